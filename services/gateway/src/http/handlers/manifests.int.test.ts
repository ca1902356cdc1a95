import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '@meridian/oci';
import { buildImage, buildIndex, errorCodes, sha256, type OciTestClient } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from '../../testing/test-gateway.js';

let harness: TestGateway;
let client: OciTestClient;

beforeAll(async () => {
  harness = await startTestGateway();
  client = harness.client;
});
afterAll(async () => harness?.close());

const ALL_MANIFEST_TYPES = [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].join(', ');

describe('manifests', () => {
  it('GET /v2/ answers 200 with the API version header ("Determining support")', async () => {
    const response = await client.fetch('/v2/');
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('PUT by tag answers 201 with Location and Docker-Content-Digest; GET and HEAD return the exact bytes ("Pushing manifests", "Pulling manifests")', async () => {
    const image = await client.pushImage('app/web', 'v1');
    expect(image.response.headers.get('location')).toBe(`/v2/app/web/manifests/${image.digest}`);
    expect(image.response.headers.get('docker-content-digest')).toBe(image.digest);

    for (const reference of ['v1', image.digest]) {
      const get = await client.fetch(client.url('manifest', { name: 'app/web', reference }), { headers: { Accept: ALL_MANIFEST_TYPES } });
      expect(get.status).toBe(200);
      expect(get.headers.get('content-type')).toBe(MediaType.OciManifest);
      expect(get.headers.get('docker-content-digest')).toBe(image.digest);
      expect(Buffer.from(await get.arrayBuffer()).equals(image.manifestBytes)).toBe(true);

      const head = await client.fetch(client.url('manifest', { name: 'app/web', reference }), { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(image.manifestBytes.length));
      expect(head.headers.get('docker-content-digest')).toBe(image.digest);
    }
  });

  it('PUT by digest stores the manifest untagged; a digest that does not match the body is DIGEST_INVALID ("Pushing manifests")', async () => {
    const image = buildImage();
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('app/bydigest', blob.bytes);
    const put = await client.pushManifest('app/bydigest', image.digest, image.manifestBytes);
    expect(put.status).toBe(201);
    const tags = await client.fetch(client.url('tags', { name: 'app/bydigest' }));
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual([]);

    const other = buildImage();
    for (const blob of [other.config, ...other.layers]) await client.pushBlob('app/bydigest', blob.bytes);
    const wrong = await client.pushManifest('app/bydigest', image.digest, other.manifestBytes);
    expect(wrong.status).toBe(400);
    expect(await errorCodes(wrong)).toEqual(['DIGEST_INVALID']);
  });

  it('a manifest whose blobs are not in the repository is MANIFEST_BLOB_UNKNOWN and stores nothing ("Pushing manifests")', async () => {
    const image = buildImage();
    await client.pushBlob('app/missing', image.config.bytes); // layers never pushed
    const put = await client.pushManifest('app/missing', 'v1', image.manifestBytes);
    expect(put.status).toBe(400);
    expect(await errorCodes(put)).toEqual(['MANIFEST_BLOB_UNKNOWN']);
    const get = await client.fetch(client.url('manifest', { name: 'app/missing', reference: image.digest }));
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['MANIFEST_UNKNOWN']);
  });

  // Repositories exist implicitly, from the first push that stores something in them: a refused
  // manifest PUT to a new name leaves no repository behind ("Pushing manifests", "Listing Tags").
  it('a refused manifest PUT to a repository not yet known leaves it unknown ("Pushing manifests")', async () => {
    const image = buildImage();
    const put = await client.pushManifest('app/never-made', 'v1', image.manifestBytes);
    expect(put.status).toBe(400);
    expect(await errorCodes(put)).toEqual(['MANIFEST_BLOB_UNKNOWN']);
    const tagList = await client.fetch(client.url('tags', { name: 'app/never-made' }));
    expect(tagList.status).toBe(404);
    expect(await errorCodes(tagList)).toEqual(['NAME_UNKNOWN']);
  });

  // image-spec "Descriptor": size "MUST" be the size of the content. Such a manifest would be
  // stored only to fail every pull (clients check the length of what they read).
  it('a descriptor whose size is not its content\'s is MANIFEST_INVALID and stores nothing ("Pushing manifests"; image-spec "Descriptor")', async () => {
    const image = buildImage();
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('app/sizes', blob.bytes);
    const manifest = JSON.parse(image.manifestBytes.toString()) as { layers: Array<{ digest: string; size: number }> };
    const layer = manifest.layers[0]!;
    const actual = layer.size;
    layer.size += 1;
    const lying = Buffer.from(JSON.stringify(manifest));
    const put = await client.pushManifest('app/sizes', 'v1', lying);
    expect(put.status).toBe(400);
    const body = (await put.json()) as { errors: Array<{ code: string; detail: unknown }> };
    expect(body.errors[0]?.code).toBe('MANIFEST_INVALID');
    expect(body.errors[0]?.detail).toEqual({ descriptors: [{ digest: layer.digest, size: actual + 1, actual }] });
    expect((await client.fetch(client.url('manifest', { name: 'app/sizes', reference: sha256(lying) }))).status).toBe(404);
    expect((await client.fetch(client.url('manifest', { name: 'app/sizes', reference: 'v1' }))).status).toBe(404);

    // The same for a child manifest of an index.
    expect((await client.pushManifest('app/sizes', 'good', image.manifestBytes)).status).toBe(201);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciManifest, digest: image.digest, size: image.manifestBytes.length + 5 }],
    };
    const indexPut = await client.pushManifest('app/sizes', 'index', index, MediaType.OciIndex);
    expect(indexPut.status).toBe(400);
    expect(await errorCodes(indexPut)).toEqual(['MANIFEST_INVALID']);
    const fixed = { ...index, manifests: [{ ...index.manifests[0]!, size: image.manifestBytes.length }] };
    expect((await client.pushManifest('app/sizes', 'index', fixed, MediaType.OciIndex)).status).toBe(201);
  });

  it('blobs pushed to another repository do not satisfy a manifest: each repository links its own blobs ("Pushing manifests": MANIFEST_BLOB_UNKNOWN)', async () => {
    const image = await client.pushImage('app/source', 'v1');
    const put = await client.pushManifest('app/target', 'v1', image.manifestBytes);
    expect(put.status).toBe(400);
    expect(await errorCodes(put)).toEqual(['MANIFEST_BLOB_UNKNOWN']);
  });

  it('an image index needs its child manifests in the repository; with them it is stored and served ("Pushing manifests")', async () => {
    const amd64 = buildImage();
    const arm64 = buildImage();
    const index = buildIndex([
      { image: amd64, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm64, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    await client.pushImage('app/multi', 'amd64', amd64);
    const early = await client.pushManifest('app/multi', 'latest', index.bytes, index.mediaType);
    expect(early.status).toBe(400);
    expect(await errorCodes(early)).toEqual(['MANIFEST_BLOB_UNKNOWN']);

    await client.pushImage('app/multi', 'arm64', arm64);
    const put = await client.pushManifest('app/multi', 'latest', index.bytes, index.mediaType);
    expect(put.status).toBe(201);
    const get = await client.fetch(client.url('manifest', { name: 'app/multi', reference: 'latest' }), { headers: { Accept: MediaType.OciIndex } });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe(MediaType.OciIndex);
    expect(get.headers.get('docker-content-digest')).toBe(index.digest);
  });

  it('Docker schema2 manifests and manifest lists are accepted with their own media types ("Pushing manifests"; Docker Image Manifest V2, Schema 2)', async () => {
    const image = await client.pushImage('app/docker', 'v1', buildImage({ docker: true }));
    const list = buildIndex([{ image, platform: { os: 'linux', architecture: 'amd64' } }], true);
    const put = await client.pushManifest('app/docker', 'list', list.bytes, MediaType.DockerManifestList);
    expect(put.status).toBe(201);
    const get = await client.fetch(client.url('manifest', { name: 'app/docker', reference: 'v1' }), { headers: { Accept: MediaType.DockerManifest } });
    expect(get.headers.get('content-type')).toBe(MediaType.DockerManifest);
  });

  it('schema1, unknown media types, invalid JSON and a Content-Type/mediaType mismatch are MANIFEST_INVALID ("Pushing manifests"; image-spec "Image Manifest" mediaType)', async () => {
    const image = buildImage();
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('app/invalid', blob.bytes);
    const cases: Array<[Uint8Array | object, string]> = [
      [{ schemaVersion: 1, name: 'app/invalid', tag: 'v1', fsLayers: [], history: [] }, MediaType.DockerSchema1Signed],
      [image.manifest, 'application/vnd.example.unknown+json'],
      [Buffer.from('{"schemaVersion": 2,'), MediaType.OciManifest],
      [image.manifest, MediaType.DockerManifest],
      [{ ...image.manifest, config: { mediaType: MediaType.OciConfig, digest: 'sha256:nothex', size: 1 } }, MediaType.OciManifest],
    ];
    for (const [body, mediaType] of cases) {
      const put = await client.pushManifest('app/invalid', 'v1', body, mediaType);
      expect(put.status, `${mediaType}`).toBe(400);
      expect(await errorCodes(put)).toEqual(['MANIFEST_INVALID']);
    }
    const tags = await client.fetch(client.url('tags', { name: 'app/invalid' }));
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual([]);
  });

  it('an annotation Postgres cannot store (a NUL) is MANIFEST_INVALID, not a failed insert ("Pushing manifests"; image-spec "Annotations")', async () => {
    const image = buildImage({ annotations: { note: 'a\u0000b' } });
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('app/nul', blob.bytes);
    const put = await client.pushManifest('app/nul', 'v1', image.manifestBytes, image.mediaType);
    expect(put.status).toBe(400);
    expect(await errorCodes(put)).toEqual(['MANIFEST_INVALID']);
  });

  it('a manifest over 4 MiB is refused with 413 before it is read whole ("Pushing manifests": 4 MiB)', async () => {
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const put = await client.pushManifest('app/huge', 'v1', huge);
    expect(put.status).toBe(413);
    expect(await errorCodes(put)).toEqual(['SIZE_INVALID']);

    // The answer comes from Content-Length alone: 64 MiB declared, 1 KiB sent, and the 413
    // arrives while the client still holds the rest back.
    const url = new URL(client.url('manifest', { name: 'app/huge', reference: 'v2' }));
    const early = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(url, {
        method: 'PUT',
        headers: { 'Content-Type': MediaType.OciManifest, 'Content-Length': String(64 * 1024 * 1024) },
      }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (text: string) => (body += text));
        response.on('end', () => {
          request.destroy();
          resolve({ status: response.statusCode ?? 0, body });
        });
      });
      request.on('error', reject);
      request.write(Buffer.alloc(1024, 0x20));
    });
    expect(early.status).toBe(413);
    expect((JSON.parse(early.body) as { errors: { code: string }[] }).errors.map((e) => e.code)).toEqual(['SIZE_INVALID']);
  });

  it('a chunked manifest over 4 MiB gets its 413, not a reset connection ("Pushing manifests": 4 MiB)', async () => {
    const url = new URL(client.url('manifest', { name: 'app/huge-chunked', reference: 'v1' }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const answer = await new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
      const request = http.request(url, { method: 'PUT', agent, headers: { 'Content-Type': MediaType.OciManifest } }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (text: string) => (body += text));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body, connection: response.headers.connection }));
      });
      request.on('error', reject);
      // No Content-Length: the body goes out chunked, so only its size as it arrives can refuse it.
      const piece = Buffer.alloc(256 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 5 * 1024 * 1024) {
          sent += piece.length;
          if (!request.write(piece)) return void request.once('drain', pump);
        }
        request.end();
      };
      pump();
    });
    expect(answer.status).toBe(413);
    expect(answer.connection).not.toBe('close');
    expect((JSON.parse(answer.body) as { errors: { code: string }[] }).errors.map((e) => e.code)).toEqual(['SIZE_INVALID']);
    // The rest of the body was read and thrown away, so the same connection serves the next request.
    const next = await new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
      const request = http.get(new URL('/v2/', url), { agent }, (response) => resolve({ status: response.resume().statusCode ?? 0, reused: request.reusedSocket }));
      request.on('error', reject);
    });
    expect(next).toEqual({ status: 200, reused: true });
    agent.destroy();
    expect((await client.fetch(url.toString())).status).toBe(404);
  });

  it('GET with an Accept that excludes the stored type is MANIFEST_UNKNOWN; */* and no Accept get it ("Pulling manifests")', async () => {
    const image = await client.pushImage('app/accept', 'v1');
    const url = client.url('manifest', { name: 'app/accept', reference: 'v1' });
    const refused = await client.fetch(url, { headers: { Accept: MediaType.DockerManifest } });
    expect(refused.status).toBe(404);
    expect(await errorCodes(refused)).toEqual(['MANIFEST_UNKNOWN']);
    expect((await client.fetch(url, { headers: { Accept: '*/*' } })).status).toBe(200);
    const none = await fetch(url, { headers: { Accept: '' } });
    expect(none.headers.get('docker-content-digest')).toBe(image.digest);
  });

  it('moving a tag serves the new manifest at once ("Pushing manifests": a tag PUT replaces)', async () => {
    const first = await client.pushImage('app/move', 'stable');
    const url = client.url('manifest', { name: 'app/move', reference: 'stable' });
    expect((await client.fetch(url, { method: 'HEAD' })).headers.get('docker-content-digest')).toBe(first.digest);
    const second = await client.pushImage('app/move', 'stable');
    expect((await client.fetch(url, { method: 'HEAD' })).headers.get('docker-content-digest')).toBe(second.digest);
  });

  it('DELETE by tag removes only the tag; DELETE by digest removes the manifest and its tags ("Deleting tags", "Deleting manifests")', async () => {
    const image = await client.pushImage('app/delete', 'one');
    await client.pushManifest('app/delete', 'two', image.manifestBytes);
    const byTag = await client.fetch(client.url('manifest', { name: 'app/delete', reference: 'one' }), { method: 'DELETE' });
    expect(byTag.status).toBe(202);
    expect((await client.fetch(client.url('manifest', { name: 'app/delete', reference: 'one' }))).status).toBe(404);
    expect((await client.fetch(client.url('manifest', { name: 'app/delete', reference: image.digest }))).status).toBe(200);

    const byDigest = await client.fetch(client.url('manifest', { name: 'app/delete', reference: image.digest }), { method: 'DELETE' });
    expect(byDigest.status).toBe(202);
    const gone = await client.fetch(client.url('manifest', { name: 'app/delete', reference: 'two' }));
    expect(gone.status).toBe(404);
    expect(await errorCodes(gone)).toEqual(['MANIFEST_UNKNOWN']);
    const again = await client.fetch(client.url('manifest', { name: 'app/delete', reference: image.digest }), { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await errorCodes(again)).toEqual(['MANIFEST_UNKNOWN']);
  });

  it('a manifest an index still lists cannot be deleted (409), so the index never points at nothing; once the index is gone it can ("Deleting manifests")', async () => {
    const child = await client.pushImage('app/held', 'child');
    const index = buildIndex([{ image: child, platform: { os: 'linux', architecture: 'amd64' } }]);
    expect((await client.pushManifest('app/held', 'multi', index.bytes, index.mediaType)).status).toBe(201);
    const childUrl = client.url('manifest', { name: 'app/held', reference: child.digest });

    const refused = await client.fetch(childUrl, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    const body = (await refused.json()) as { errors: Array<{ code: string; detail: { indexes: string[] } }> };
    expect(body.errors.map((e) => e.code)).toEqual(['UNSUPPORTED']);
    expect(body.errors[0]!.detail.indexes).toEqual([index.digest]);
    // Nothing changed: the child and its tag are still served.
    expect((await client.fetch(client.url('manifest', { name: 'app/held', reference: 'child' }))).status).toBe(200);
    // Removing only the child's tag is fine ("Deleting tags").
    expect((await client.fetch(client.url('manifest', { name: 'app/held', reference: 'child' }), { method: 'DELETE' })).status).toBe(202);

    expect((await client.fetch(client.url('manifest', { name: 'app/held', reference: index.digest }), { method: 'DELETE' })).status).toBe(202);
    expect((await client.fetch(childUrl, { method: 'DELETE' })).status).toBe(202);
    expect((await client.fetch(childUrl)).status).toBe(404);
  });

  it('the same bytes pushed again as another media type are MANIFEST_INVALID: a GET never answers with a type other than the one pushed ("Pushing manifests", "Pulling manifests")', async () => {
    const image = buildImage();
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('app/retyped', blob.bytes);
    // Without a mediaType field the body itself does not say which of the two it is.
    const { mediaType: _omitted, ...untyped } = image.manifest;
    const bytes = Buffer.from(JSON.stringify(untyped));
    expect((await client.pushManifest('app/retyped', 'oci', bytes, MediaType.OciManifest)).status).toBe(201);
    const retyped = await client.pushManifest('app/retyped', 'docker', bytes, MediaType.DockerManifest);
    expect(retyped.status).toBe(400);
    expect(await errorCodes(retyped)).toEqual(['MANIFEST_INVALID']);
    expect((await client.fetch(client.url('manifest', { name: 'app/retyped', reference: 'docker' }))).status).toBe(404);
    const get = await client.fetch(client.url('manifest', { name: 'app/retyped', reference: sha256(bytes) }));
    expect(get.headers.get('content-type')).toBe(MediaType.OciManifest);
    // The same type again is an ordinary re-push.
    expect((await client.pushManifest('app/retyped', 'again', bytes, MediaType.OciManifest)).status).toBe(201);
  });

  it('unknown repository is NAME_UNKNOWN, unknown tag MANIFEST_UNKNOWN, bad names NAME_INVALID, bad tags MANIFEST_INVALID ("Error codes")', async () => {
    const unknownRepo = await client.fetch(client.url('manifest', { name: 'nobody/here', reference: 'latest' }));
    expect(unknownRepo.status).toBe(404);
    expect(await errorCodes(unknownRepo)).toEqual(['NAME_UNKNOWN']);

    await client.pushImage('app/known', 'v1');
    const unknownTag = await client.fetch(client.url('manifest', { name: 'app/known', reference: 'v2' }));
    expect(unknownTag.status).toBe(404);
    expect(await errorCodes(unknownTag)).toEqual(['MANIFEST_UNKNOWN']);

    // (fetch normalises '/../' away before sending; raw-socket path tricks are in bad-input.int.test.ts)
    for (const name of ['App/Upper', 'a..b', 'a%2Fb', 'a//b', 'a/-b']) {
      const response = await client.fetch(`/v2/${name}/manifests/latest`);
      expect(response.status, name).toBe(400);
      expect(await errorCodes(response)).toEqual(['NAME_INVALID']);
    }
    const badTag = await client.pushManifest('app/known', '-bad', buildImage().manifest);
    expect(badTag.status).toBe(400);
    expect(await errorCodes(badTag)).toEqual(['MANIFEST_INVALID']);
  });

  it('GET, HEAD and DELETE by a reference that is neither a tag nor a supported digest are 404 MANIFEST_UNKNOWN; a PUT by it is 400 ("Pulling manifests", "Deleting manifests", "Pushing manifests")', async () => {
    const image = await client.pushImage('app/badref', 'v1');
    const notTags = ['.INVALID_MANIFEST_NAME', '-bad', 'a'.repeat(129), 'a'.repeat(200), 'a%2Fb'];
    const notDigests = ['sha256:zz', 'sha256:abc', 'sha256:baddigeststring', `sha256:${'A'.repeat(64)}`, `sha1:${'a'.repeat(40)}`, `md5:${'a'.repeat(32)}`];
    for (const reference of [...notTags, ...notDigests]) {
      // The conformance suite asks GET and HEAD of `.INVALID_MANIFEST_NAME` for a 404; nothing can
      // be stored under such a reference, in a known repository or an unknown one.
      for (const name of ['app/badref', 'nobody/badref']) {
        for (const method of ['GET', 'HEAD', 'DELETE']) {
          const response = await client.fetch(client.url('manifest', { name, reference }), { method });
          expect(response.status, `${method} ${name} ${reference}`).toBe(404);
          if (method !== 'HEAD') expect(await errorCodes(response), `${method} ${name} ${reference}`).toEqual(['MANIFEST_UNKNOWN']);
        }
      }
    }
    // A push would create the name, so a bad one is the client's error: the tag grammar is
    // MANIFEST_INVALID (v1.1 has no tag code; TAG_INVALID is legacy schema1), a digest DIGEST_INVALID.
    for (const reference of notTags) {
      const put = await client.pushManifest('app/badref', reference, image.manifestBytes);
      expect(put.status, reference).toBe(400);
      expect(await errorCodes(put), reference).toEqual(['MANIFEST_INVALID']);
    }
    for (const reference of notDigests) {
      const put = await client.pushManifest('app/badref', reference, image.manifestBytes);
      expect(put.status, reference).toBe(400);
      expect(await errorCodes(put), reference).toEqual(['DIGEST_INVALID']);
    }
    // The repository name is checked first.
    for (const method of ['GET', 'DELETE']) {
      const badName = await client.fetch('/v2/App/BadRef/manifests/.INVALID_MANIFEST_NAME', { method });
      expect(badName.status, method).toBe(400);
      expect(await errorCodes(badName), method).toEqual(['NAME_INVALID']);
    }
    // A well-formed tag or digest that is absent stays an ordinary miss.
    for (const reference of ['absent', `sha256:${'a'.repeat(64)}`, `sha512:${'a'.repeat(128)}`]) {
      const head = await client.fetch(client.url('manifest', { name: 'app/badref', reference }), { method: 'HEAD' });
      expect(head.status, reference).toBe(404);
      const get = await client.fetch(client.url('manifest', { name: 'app/badref', reference }));
      expect(await errorCodes(get), reference).toEqual(['MANIFEST_UNKNOWN']);
    }
    // Nothing was deleted or tagged on the way.
    const tags = (await (await client.fetch(client.url('tags', { name: 'app/badref' }))).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['v1']);
    expect((await client.fetch(client.url('manifest', { name: 'app/badref', reference: image.digest }), { method: 'HEAD' })).status).toBe(200);
  });

  it('a PUT of a manifest with a subject answers OCI-Subject ("Pushing manifests with subject")', async () => {
    const subject = await client.pushImage('app/signed', 'v1');
    const signature = buildImage({
      configMediaType: MediaType.OciEmpty,
      artifactType: 'application/vnd.example.signature',
      layers: 1,
      subject: { mediaType: MediaType.OciManifest, digest: subject.digest, size: subject.manifestBytes.length },
    });
    for (const blob of [signature.config, ...signature.layers]) await client.pushBlob('app/signed', blob.bytes);
    const put = await client.pushManifest('app/signed', signature.digest, signature.manifestBytes);
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);
  });

  it('an unsupported method on a known route is 405 UNSUPPORTED, an unknown path 404 ("Endpoints", "Error codes")', async () => {
    const patch = await client.fetch(client.url('manifest', { name: 'app/web', reference: 'v1' }), { method: 'PATCH' });
    expect(patch.status).toBe(405);
    expect(await errorCodes(patch)).toEqual(['UNSUPPORTED']);
    // RFC 9110 §15.5.6: a 405 MUST carry Allow.
    expect(patch.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE');
    expect(patch.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    const nowhere = await client.fetch('/v2/app/web/nowhere');
    expect(nowhere.status).toBe(404);
  });

  it('sha512 manifest digests are accepted when the reference names one ("Pushing manifests"; image-spec "Digests")', async () => {
    const image = buildImage();
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('app/sha512', blob.bytes);
    const { createHash } = await import('node:crypto');
    const digest = `sha512:${createHash('sha512').update(image.manifestBytes).digest('hex')}`;
    const put = await client.pushManifest('app/sha512', digest, image.manifestBytes);
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    expect(sha256(image.manifestBytes)).toBe(image.digest);
  });
});
