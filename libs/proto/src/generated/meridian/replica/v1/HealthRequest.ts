// Original file: proto/meridian/replica/v1/replica.proto


export interface HealthRequest {
}

export interface HealthRequest__Output {
}
