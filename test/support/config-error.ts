// The configuration problem a call reports: configuration and users-file errors are ConfigErrors,
// whose message names the setting and the fix.
import { expect } from 'chai';
import { ConfigError } from '../../proxy/src/config/errors.js';

/** Runs `run`, which must throw a ConfigError, and returns that error. */
export function thrownConfigError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}
