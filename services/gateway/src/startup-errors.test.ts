import { describe, expect, it } from 'vitest';
import { StartupError, databaseStartupError, describeStartFailure, listenStartupError, maskPassword, passwordsIn } from './startup-errors.js';

// The mistakes that can be made for real are made in e2e/operator-mistakes.e2e.test.ts; these
// are the ones this machine cannot produce (a port that needs privileges, a server starting up).

const URL_WITH_PASSWORD = 'postgres://meridian:p%40ss-word@db.internal:6432/registry';

describe('describeStartFailure', () => {
  const cause = new Error('connect ECONNREFUSED 127.0.0.1:5999');
  const mistake = new StartupError('DATABASE_URL: nothing accepts connections at 127.0.0.1:5999 (ECONNREFUSED); start PostgreSQL', { cause });

  it("prints a mistake as its one line, and adds the cause's stack only when asked", () => {
    expect(describeStartFailure(mistake, { stacks: false, secrets: [] })).toBe(mistake.message);
    const withStack = describeStartFailure(mistake, { stacks: true, secrets: [] });
    expect(withStack.split('\n')[0]).toBe(mistake.message);
    expect(withStack).toContain(`caused by ${cause.stack}`);
  });

  it('prints anything else, a bug, with its stack', () => {
    const bug = new TypeError('cannot read properties of undefined');
    expect(describeStartFailure(bug, { stacks: false, secrets: [] })).toBe(bug.stack);
  });

  it('scrubs every secret from whatever it prints, as written in the URL and decoded', () => {
    const leaky = new Error(`failed with ${URL_WITH_PASSWORD} and p@ss-word`);
    const printed = describeStartFailure(leaky, { stacks: true, secrets: passwordsIn(URL_WITH_PASSWORD) });
    expect(printed).not.toContain('p%40ss-word');
    expect(printed).not.toContain('p@ss-word');
    expect(printed).toContain('postgres://meridian:*****@db.internal:6432/registry');
  });
});

describe('maskPassword', () => {
  it('hides the password and a password parameter, and keeps the rest', () => {
    expect(maskPassword(`${URL_WITH_PASSWORD}?password=other&sslmode=require`)).toBe('postgres://meridian:*****@db.internal:6432/registry?password=*****&sslmode=require');
    expect(maskPassword('postgres://meridian@db.internal/registry')).toBe('postgres://meridian@db.internal/registry');
    expect(maskPassword('postgres://meridian:secret@db.internal:notaport/registry')).toBeUndefined();
  });
});

describe('databaseStartupError', () => {
  const translate = (err: unknown, stage: 'create' | 'migrate' = 'create') => databaseStartupError(err, URL_WITH_PASSWORD, stage)?.message;

  it('names DATABASE_URL, the server, user and database, and what to do, never the password', () => {
    const starting = Object.assign(new Error('the database system is starting up'), { code: '57P03' });
    expect(translate(starting)).toBe(
      'DATABASE_URL: PostgreSQL at db.internal:6432 (user "meridian", database "registry") is not accepting connections yet (57P03: the database system is starting up); wait until the server is up, then start again',
    );
    expect(translate(Object.assign(new Error('connect ETIMEDOUT 10.0.0.9:6432'), { code: 'ETIMEDOUT' }))).toMatch(/^DATABASE_URL: db\.internal:6432 cannot be reached \(ETIMEDOUT\)/);
    expect(translate(new Error('Connection terminated due to connection timeout'))).toMatch(/^DATABASE_URL: no PostgreSQL answered at db\.internal:6432 in time/);
    expect(translate(new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'))).toMatch(/asks for a password, and DATABASE_URL holds none/);
  });

  it('tells creating the database apart from creating its tables when a privilege is missing', () => {
    expect(translate(Object.assign(new Error('permission denied to create database'), { code: '42501' }), 'create')).toMatch(/CREATE DATABASE "registry" OWNER "meridian"/);
    expect(translate(Object.assign(new Error('permission denied for schema public'), { code: '42501' }), 'migrate')).toMatch(/ALTER DATABASE "registry" OWNER TO "meridian"/);
  });

  it('leaves what is no mistake of the operator alone: a failing migration is a bug', () => {
    expect(translate(Object.assign(new Error('syntax error at or near "TABEL"'), { code: '42601' }), 'migrate')).toBeUndefined();
    expect(translate(new TypeError('undefined is not a function'))).toBeUndefined();
  });
});

describe('listenStartupError', () => {
  it('names PORT for a port the user may not take', () => {
    const err = Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES' });
    expect(listenStartupError(err, '0.0.0.0', 80)?.message).toBe(
      'PORT: this user may not listen on 0.0.0.0:80 (EACCES); use a port from 1024 up, or grant the process CAP_NET_BIND_SERVICE',
    );
    expect(listenStartupError(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }), '::1', 5000)?.message).toMatch(/^PORT: \[::1\]:5000 is already in use/);
  });
});
