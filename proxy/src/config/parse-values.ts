// Values of single settings, parsed or refused with a ConfigError that names the variable and the
// fix. Shared by every settings parser (config.ts, state-settings.ts).
import { ConfigError } from './errors.js';

export function parseInteger(variable: string, value: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value.trim())) {
    throw new ConfigError(variable, `"${value}" is not a whole number`, `Use a number from ${min} to ${max}`);
  }
  const n = Number(value.trim());
  if (n < min || n > max) {
    throw new ConfigError(variable, `${n} is out of range`, `Use a number from ${min} to ${max}`);
  }
  return n;
}

export function parseChoice<T extends string>(variable: string, value: string, choices: readonly T[]): T {
  const v = value.trim().toLowerCase();
  if ((choices as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(
    variable,
    `"${value}" is not one of ${choices.join(', ')}`,
    `Use ${choices.join(' or ')}`,
  );
}
