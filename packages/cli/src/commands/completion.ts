import { Argument, Command } from 'commander';
import { type Declare, oneOf } from './options.js';

/** The words a command completes: its sub-commands, flags and the choices of its arguments. */
function words(cmd: Command): string[] {
  const out = cmd.commands.map((c) => c.name());
  for (const o of cmd.options) {
    if (o.short) out.push(o.short);
    if (o.long) out.push(o.long);
  }
  out.push('-h', '--help', '--version');
  for (const a of (cmd as unknown as { registeredArguments: Argument[] }).registeredArguments) {
    const parse = (a as unknown as { parseArg?: { words?: readonly string[] } }).parseArg;
    if (parse?.words) out.push(...parse.words);
  }
  return [...new Set(out)];
}

const fn = (name: string) => `_${name.replace(/[^A-Za-z0-9]/g, '_')}`;

/** A bash completion script for the programs, generated from their declarations. */
export function bashCompletion(programs: Command[]): string {
  const parts = ['# bash completion for xsmeta, xe-backup-metadata and xe-restore-metadata'];
  for (const p of programs) {
    const cases = p.commands
      .map((c) => `    ${c.name()}) COMPREPLY=($(compgen -W "${words(c).join(' ')}" -- "$cur")) ;;`)
      .join('\n');
    parts.push(
      p.commands.length
        ? `${fn(p.name())}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${words(p).join(' ')} help" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
    help) COMPREPLY=($(compgen -W "${p.commands.map((c) => c.name()).join(' ')}" -- "$cur")) ;;
  esac
}
complete -F ${fn(p.name())} ${p.name()}`
        : `${fn(p.name())}() {
  COMPREPLY=($(compgen -W "${words(p).join(' ')}" -- "\${COMP_WORDS[COMP_CWORD]}"))
}
complete -F ${fn(p.name())} ${p.name()}`,
    );
  }
  return parts.join('\n\n');
}

/** `xsmeta completion bash`: prints the script; `source <(xsmeta completion bash)` loads it. */
export function completionCommand(programs: () => Command[]): Declare {
  return (ctx) =>
    new Command('completion')
      .description('print a shell completion script: source <(xsmeta completion bash)')
      .addArgument(new Argument('<shell>', 'the shell (bash)').argParser(oneOf(['bash'] as const)))
      .action(() => {
        ctx.io.out(bashCompletion(programs()));
        ctx.exit(0);
      });
}
