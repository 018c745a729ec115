// Reads a Dockerfile with a real parser (dockerfile-ast, the parser behind the Docker language
// server) into the facts our image tests check: stages, the runtime stage's user, env, ports,
// health check and entrypoint.
import { readFileSync } from 'node:fs';
import { DockerfileParser } from 'dockerfile-ast';

export interface Stage {
  readonly name: string | undefined;
  readonly image: string;
  readonly tag: string | undefined;
  readonly instructions: readonly { keyword: string; args: string }[];
}

export interface DockerfileFacts {
  readonly text: string;
  readonly stages: readonly Stage[];
  readonly runtime: Stage;
  readonly user: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly exposed: readonly number[];
  readonly healthcheck: readonly string[] | undefined;
  readonly entrypoint: readonly string[];
  readonly volumes: readonly string[];
}

function jsonArray(args: string): string[] {
  return JSON.parse(args) as string[];
}

export function readDockerfile(path: string): DockerfileFacts {
  const text = readFileSync(path, 'utf8');
  const file = DockerfileParser.parse(text);
  const stages: Stage[] = [];
  let current:
    | {
        name: string | undefined;
        image: string;
        tag: string | undefined;
        instructions: { keyword: string; args: string }[];
      }
    | undefined;
  for (const ins of file.getInstructions()) {
    const keyword = ins.getKeyword();
    if (keyword === 'FROM') {
      const from = file.getFROMs().find((f) => f.getRange().start.line === ins.getRange().start.line)!;
      current = {
        name: from.getBuildStage() ?? undefined,
        image: from.getImageName() ?? '',
        tag: from.getImageTag() ?? undefined,
        instructions: [],
      };
      stages.push(current);
      continue;
    }
    current?.instructions.push({ keyword, args: ins.getArgumentsContent() ?? '' });
  }
  const runtime = stages.at(-1)!;
  const env: Record<string, string> = {};
  for (const e of file.getENVs()) {
    if (e.getRange().start.line < file.getFROMs().at(-1)!.getRange().start.line) continue;
    for (const p of e.getProperties()) env[p.getName()] = p.getValue() ?? '';
  }
  const last = (k: string) => runtime.instructions.filter((i) => i.keyword === k).at(-1);
  const health = last('HEALTHCHECK')?.args;
  const cmdAt = health?.indexOf('CMD ') ?? -1;
  return {
    text,
    stages,
    runtime,
    user: last('USER')?.args.trim(),
    env,
    exposed: runtime.instructions
      .filter((i) => i.keyword === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0]))),
    healthcheck: health && cmdAt >= 0 ? jsonArray(health.slice(cmdAt + 4).trim()) : undefined,
    entrypoint: jsonArray(last('ENTRYPOINT')?.args ?? '[]'),
    volumes: runtime.instructions.filter((i) => i.keyword === 'VOLUME').flatMap((i) => jsonArray(i.args)),
  };
}
