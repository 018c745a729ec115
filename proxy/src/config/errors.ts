/** A configuration mistake the user can fix: names the variable, what was wrong and what to write. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  readonly variable: string;

  constructor(variable: string, problem: string, fix: string) {
    super(`${variable}: ${problem}. ${fix}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}
