#!/usr/bin/env node
// Generates the command reference of apps/cli/README.md from the commands themselves, the way `oclif readme`
// does (without the oclif dev CLI): the text between `<!-- commands -->` and `<!-- commandsstop -->` is
// replaced; everything outside the markers is kept as it is. The commands are read from the build output
// (`oclif.manifest.json` and `dist/commands`, made by `pnpm exec turbo run build --filter=@gc/cli`) through
// @oclif/core, as `gc --help` reads them.
//
//   node scripts/cli-readme.mjs           rewrite the reference in apps/cli/README.md
//   node scripts/cli-readme.mjs --check   exit 1, naming the stale commands, when the README is not up to date
//
// The output goes through prettier (the repo's config), so `prettier --check` and `--check` always agree.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import * as prettier from 'prettier';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'apps', 'cli');
const readmeFile = join(cliDir, 'README.md');
const START = '<!-- commands -->';
const STOP = '<!-- commandsstop -->';
const GENERATED_NOTE =
  '<!-- Generated from the commands by scripts/cli-readme.mjs (`pnpm readme:cli`): edit the commands, not this. -->';
const USAGE_WIDTH = 100;
const REGENERATE = 'pnpm exec turbo run build --filter=@gc/cli && pnpm readme:cli';

const usage = 'usage: node scripts/cli-readme.mjs [--check]';
const argv = process.argv.slice(2);
if (argv.some((a) => a !== '--check')) {
  console.error(usage);
  process.exit(2);
}
const check = argv.includes('--check');

// ---------------------------------------------------------------------------------------------------------
// Build output
// ---------------------------------------------------------------------------------------------------------

const manifestFile = join(cliDir, 'oclif.manifest.json');
if (!existsSync(manifestFile) || !existsSync(join(cliDir, 'dist', 'commands'))) {
  console.error(
    `cli-readme: apps/cli is not built (no oclif.manifest.json or dist/commands); run \`pnpm exec turbo run build --filter=@gc/cli\` first`,
  );
  process.exit(2);
}
const newer = newerSources(statSync(manifestFile).mtimeMs);
if (newer.length > 0) {
  console.warn(
    `cli-readme: warning: apps/cli's build is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ` (+${newer.length - 3} more)` : ''}; ` +
      'the reference is made from the build, rebuild if commands changed (pnpm exec turbo run build --filter=@gc/cli)',
  );
}

/** apps/cli files the build is made from that changed after it (tests and test helpers aside). */
function newerSources(builtAt) {
  const files = ['package.json'];
  for (const f of readdirSync(join(cliDir, 'src'), { recursive: true })) {
    const p = String(f);
    if (
      /\.[cm]?[jt]sx?$/.test(p) &&
      !/\.test\.[cm]?[jt]sx?$/.test(p) &&
      !/(^|[\\/])(test|__tests__)[\\/]/.test(p)
    )
      files.push(join('src', p));
  }
  return files.filter((f) => statSync(join(cliDir, f)).mtimeMs > builtAt).sort();
}

// The CLI's own @oclif/core (apps/cli's dependency; the dist commands import the same module instance, which
// is what tells an integer flag from a string one: they share the parse function of Flags.integer etc.).
const requireFromCli = createRequire(join(cliDir, 'package.json'));
const oclif = await import(pathToFileURL(requireFromCli.resolve('@oclif/core')).href);
const { Args, CommandHelp, Config, Flags, toConfiguredId } = oclif;

const config = await Config.load(cliDir);
const bin = config.bin;

/** Known parse functions → type names (custom() flags and args share their factory's parse function). */
const flagParsers = new Map([
  [Flags.integer().parse, 'integer'],
  [Flags.directory().parse, 'directory'],
  [Flags.file().parse, 'file'],
  [Flags.url().parse, 'url'],
]);
const argParsers = new Map([
  [Args.integer().parse, 'integer'],
  [Args.boolean().parse, 'boolean'],
  [Args.directory().parse, 'directory'],
  [Args.file().parse, 'file'],
  [Args.url().parse, 'url'],
]);

const cached = config.commands
  .filter((c) => !c.hidden && c.pluginType === 'core')
  .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
const seen = new Set();
const commands = [];
for (const c of cached) {
  if (seen.has(c.id)) continue;
  seen.add(c.id);
  let cls;
  try {
    cls = await c.load();
  } catch (err) {
    console.error(`cli-readme: cannot load command ${c.id} from apps/cli/dist: ${err?.stack ?? err}`);
    process.exit(2);
  }
  commands.push({ cmd: c, cls });
}
if (commands.length === 0) {
  console.error('cli-readme: the CLI has no commands (is apps/cli built?)');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------

/** `kv:put` → `kv put` (the topic separator of the CLI). */
const spaced = (id) => toConfiguredId(id, config);

/** Replaces oclif's `<%= config.x %>` / `<%= command.id %>` placeholders. */
function render(text, cmd) {
  return String(text).replace(/<%=\s*([\w.]+)\s*%>/g, (whole, path) => {
    if (path === 'command.id') return spaced(cmd.id);
    if (path.startsWith('config.')) {
      const v = config[path.slice('config.'.length)];
      if (typeof v === 'string' || typeof v === 'number') return String(v);
    }
    return whole;
  });
}

/** Splits text into code spans (kept verbatim) and the rest (escaped with `escape`). */
function outsideCode(text, escape) {
  return text
    .split(/(`+[^`]*?`+)/)
    .map((part, i) => (i % 2 === 1 ? part : escape(part)))
    .join('');
}

/** Markdown-escapes plain text so it renders as written (code spans in it stay code spans). */
function prose(text) {
  return outsideCode(text, (s) =>
    s
      .replace(/\\/g, '\\\\')
      .replace(/([*[\]<])/g, '\\$1')
      .replace(/&(?=#?\w+;)/g, '&amp;')
      // `_` only where it could start or end emphasis (not inside words such as GC_NATS_URL).
      .replace(/(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, '\\_'),
  )
    .split('\n')
    .map((line) =>
      line
        .trimStart()
        // Line starts that markdown would read as a heading, quote, list, rule or setext underline.
        .replace(/^(#{1,6}|[-+]|\d+[.)])(?=\s|$)/, (m) => m.replace(/[#+.)-]/, '\\$&'))
        .replace(/^>/, '\\>')
        .replace(/^([-=])(?=[-=\s]*$)/, '\\$1'),
    )
    .join('\n');
}

/** Text for one table cell: one line (table() escapes its `|`). */
function cell(text) {
  return prose(text.replace(/\s*\n\s*/g, ' '));
}

const code = (text) => {
  const s = String(text);
  const ticks = '`'.repeat(Math.max(0, ...(s.match(/`+/g) ?? []).map((m) => m.length)) + 1);
  return ticks.length > 1 || s.startsWith(' ') || s.endsWith(' ')
    ? `${ticks} ${s} ${ticks}`
    : `${ticks}${s}${ticks}`;
};

function fence(lines, lang = 'sh-session') {
  const body = lines.join('\n');
  const ticks = '`'.repeat(Math.max(3, ...(body.match(/`{3,}/g) ?? []).map((m) => m.length + 1)));
  return `${ticks}${lang}\n${body}\n${ticks}`;
}

/** A GFM table; `|` in cells is escaped (also in code spans, as GFM tables want). */
function table(header, rows) {
  const line = (cells) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A table of flags or arguments, one row of `cells(item)` each, with an Options column when one has options. */
function optionsTable(header, items, cells) {
  const withOptions = items.some((i) => i.options?.length);
  const options = (i) => (i.options ?? []).map((o) => code(o)).join(', ');
  return table(
    withOptions ? [...header, 'Options'] : header,
    items.map((i) => (withOptions ? [...cells(i), options(i)] : cells(i))),
  );
}

const argName = (a, strict) => `${a.name.toUpperCase()}${a.multiple || strict === false ? '...' : ''}`;

/** `gc node drain NODE`, `gc dev [ACTION]`: the command and its arguments, as headings and the TOC show it. */
function title(cmd) {
  const args = Object.values(cmd.args ?? {})
    .filter((a) => !a.hidden)
    .map((a) => (a.required ? argName(a, cmd.strict) : `[${argName(a, cmd.strict)}]`));
  return [bin, spaced(cmd.id), ...args].join(' ');
}

/** The USAGE lines, as oclif's help computes them (DocOpts), wrapped at USAGE_WIDTH. */
function usageLines(cmd) {
  const help = new CommandHelp(cmd, config, { maxWidth: Number.MAX_SAFE_INTEGER, stripAnsi: true });
  const usages = cmd.usage ? [cmd.usage].flat() : [help.defaultUsage()];
  return usages.flatMap((u) => {
    const rest = stripVTControlCharacters(u)
      .replace('<%= command.id %>', '')
      .replace(new RegExp(`^(${escapeRegExp(cmd.id)}|${escapeRegExp(spaced(cmd.id))})(?=\\s|$)`), '')
      .trim();
    return wrapUsage(render(`$ ${bin} ${spaced(cmd.id)}${rest ? ` ${rest}` : ''}`, cmd));
  });
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Wraps a usage line between words, never inside a `[...]` or `(...)` group. */
function wrapUsage(line) {
  const words = [];
  let depth = 0;
  for (const w of line.split(' ')) {
    if (depth > 0) words[words.length - 1] += ` ${w}`;
    else words.push(w);
    depth += (w.match(/[[(]/g) ?? []).length - (w.match(/[\])]/g) ?? []).length;
    if (depth < 0) depth = 0;
  }
  const lines = [];
  let current = '';
  for (const w of words) {
    if (current && current.length + 1 + w.length > USAGE_WIDTH) {
      lines.push(current);
      current = `    ${w}`;
    } else current = current ? `${current} ${w}` : w;
  }
  if (current) lines.push(current);
  return lines;
}

function flagType(flag, loaded) {
  return flag.type === 'boolean' ? 'boolean' : valueType(flag, loaded, flagParsers);
}

function argType(arg, loaded) {
  return valueType(arg, loaded, argParsers);
}

/** The Type of a flag or argument: what its parser (one of `parsers`) makes, its range, whether it repeats. */
function valueType(cached, loaded, parsers) {
  let type = parsers.get(loaded?.parse) ?? 'string';
  const range = [];
  if (typeof loaded?.min === 'number') range.push(`min ${loaded.min}`);
  if (typeof loaded?.max === 'number') range.push(`max ${loaded.max}`);
  if (range.length) type += ` (${range.join(', ')})`;
  if (cached.multiple) type += ', multiple';
  return type;
}

function defaultText(value) {
  if (value === undefined || value === null || value === '') return '';
  if (Array.isArray(value)) return value.map((v) => code(String(v))).join(', ');
  if (typeof value === 'object') return code(JSON.stringify(value));
  return code(String(value));
}

const names = (list, prefix = '--') =>
  [list]
    .flat()
    .map((n) => code(`${prefix}${n}`))
    .join(', ');

/** The flag's summary and description, then its env variable, aliases and relations in brackets. */
function flagDescription(flag, cmd) {
  const text = [flag.summary, flag.description].filter(Boolean).map((t) => render(t, cmd).trim());
  if (text.length === 2 && !/[.!?:;]$/.test(text[0])) text[0] += '.';
  const notes = [];
  if (flag.env) notes.push(`env: ${code(flag.env)}`);
  const aliases = [
    ...(flag.aliases ?? []).map((a) => `--${a}`),
    ...(flag.charAliases ?? []).map((a) => `-${a}`),
  ];
  if (aliases.length) notes.push(`aliases: ${aliases.map((a) => code(a)).join(', ')}`);
  if (flag.exclusive?.length) notes.push(`not with ${names(flag.exclusive)}`);
  if (flag.exactlyOne?.length) notes.push(`exactly one of ${names(flag.exactlyOne)}`);
  if (flag.dependsOn?.length) notes.push(`requires ${names(flag.dependsOn)}`);
  if (flag.deprecated) notes.push('deprecated');
  return [text.length ? cell(text.join(' ')) : '', notes.length ? `(${notes.join('; ')})` : '']
    .filter(Boolean)
    .join(' ');
}

/** The cached default (the manifest's), else the command class's when it is a plain value. */
function defaultOf(cached, loaded) {
  const value = cached.default !== undefined ? cached.default : loaded?.default;
  if (typeof value === 'function') return undefined;
  if (cached.type === 'boolean' && value === false) return undefined;
  return value;
}

function flagTables(cmd, cls) {
  const loadedFlags = { ...(cls.baseFlags ?? {}), ...(cls.flags ?? {}) };
  const flags = Object.entries(cmd.flags ?? {})
    .filter(([, f]) => !f.hidden)
    .map(([name, f]) => ({ ...f, name: f.name ?? name }))
    // oclif's help order: flags with a short form first (by it), then by name.
    .sort((a, b) => {
      const ka = [a.char ? 0 : 1, a.char ?? '', a.name];
      const kb = [b.char ? 0 : 1, b.char ?? '', b.name];
      for (let i = 0; i < 3; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
      return 0;
    });
  const groups = new Map([['', []]]);
  for (const f of flags) {
    const group = f.helpGroup ?? '';
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(f);
  }
  const out = [];
  for (const [group, list] of groups) {
    if (list.length === 0) continue;
    const text = optionsTable(['Flag', 'Char', 'Type', 'Default', 'Required', 'Description'], list, (f) => [
      code(f.type === 'boolean' && f.allowNo ? `--[no-]${f.name}` : `--${f.name}`),
      f.char ? code(`-${f.char}`) : '',
      flagType(f, loadedFlags[f.name]),
      defaultText(defaultOf(f, loadedFlags[f.name])),
      f.required ? 'yes' : '',
      flagDescription(f, cmd),
    ]);
    out.push(`**${group ? `${group.toUpperCase()} FLAGS` : 'FLAGS'}**`, text);
  }
  return out;
}

function argTable(cmd, cls) {
  const loadedArgs = cls.args ?? {};
  const args = Object.entries(cmd.args ?? {})
    .filter(([, a]) => !a.hidden)
    .map(([name, a]) => ({ ...a, name: a.name ?? name }));
  if (args.length === 0) return [];
  const text = optionsTable(['Argument', 'Type', 'Default', 'Required', 'Description'], args, (a) => [
    code(argName(a, cmd.strict)),
    argType(a, loadedArgs[a.name]),
    defaultText(defaultOf(a, loadedArgs[a.name])),
    a.required ? 'yes' : '',
    a.description ? cell(render(a.description, cmd).trim()) : '',
  ]);
  return ['**ARGUMENTS**', text];
}

/** oclif's example forms: a command line, `description\ncommand…`, or `{ description, command }`. */
function exampleLines(cmd) {
  const isCommand = (l) => l.startsWith(`${bin} `) || l === bin || l.startsWith(`$ ${bin}`);
  const asCommand = (l) => (l.startsWith('$ ') ? l : isCommand(l) ? `$ ${l}` : l);
  const blocks = [cmd.examples ?? []].flat().map((e) => {
    if (typeof e === 'string') {
      const lines = render(e, cmd).split(/\r?\n/).filter(Boolean);
      if (lines.length >= 2 && !isCommand(lines[0]) && lines.slice(1).every(isCommand))
        return [`# ${lines[0]}`, ...lines.slice(1).map(asCommand)];
      return lines.map(asCommand);
    }
    const description = e.description
      ? render(e.description, cmd)
          .split(/\r?\n/)
          .map((l) => `# ${l}`)
      : [];
    return [...description, asCommand(render(e.command, cmd))];
  });
  // Examples with a description get a blank line around them; plain command lines stay together.
  const out = [];
  for (const b of blocks) {
    const separate = b.length > 1 || (out.length > 0 && out.at(-1).startsWith('#'));
    if (out.length && separate) out.push('');
    out.push(...b);
  }
  return out;
}

function sourceLink(cmd) {
  const rel = cmd.relativePath;
  if (!Array.isArray(rel) || rel[0] !== 'dist') return undefined;
  const base = join('src', ...rel.slice(1)).replace(/\.[cm]?js$/, '');
  for (const ext of ['.ts', '.mts', '.tsx', '.js', '.mjs']) {
    if (existsSync(join(cliDir, base + ext))) {
      const p = relative(cliDir, join(cliDir, base + ext))
        .split('\\')
        .join('/');
      return `_See code: [${p.replace(/[_*[\]]/g, '\\$&')}](${p})_`;
    }
  }
  return undefined;
}

function commandSection({ cmd, cls }) {
  const parts = [`## ${title(cmd)}`];
  if (cmd.summary) parts.push(prose(render(cmd.summary, cmd).trim()));
  if (cmd.description) {
    for (const p of render(cmd.description, cmd)
      .trim()
      .split(/\n\s*\n/))
      parts.push(prose(p.trim()));
  }
  if (cmd.deprecationOptions || cmd.state === 'deprecated') parts.push('_Deprecated._');
  parts.push('**USAGE**', fence(usageLines(cmd)));
  parts.push(...argTable(cmd, cls));
  parts.push(...flagTables(cmd, cls));
  const aliases = (cmd.aliases ?? []).filter(Boolean);
  if (aliases.length) parts.push('**ALIASES**', fence(aliases.map((a) => `$ ${bin} ${spaced(a)}`)));
  const examples = exampleLines(cmd);
  if (examples.length) parts.push('**EXAMPLES**', fence(examples));
  const source = sourceLink(cmd);
  if (source) parts.push(source);
  return parts.join('\n\n');
}

/** GitHub's heading anchors (github-slugger): lower case, punctuation dropped, spaces to dashes, -1, -2… for repeats. */
function slugger(existing) {
  const occurrences = new Map();
  const slug = (text) => {
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    let s = base;
    while (occurrences.has(s)) {
      occurrences.set(base, occurrences.get(base) + 1);
      s = `${base}-${occurrences.get(base)}`;
    }
    occurrences.set(s, 0);
    return s;
  };
  for (const h of existing) slug(h);
  return slug;
}

function block(outsideHeadings) {
  const slug = slugger(outsideHeadings);
  const sections = commands.map((c) => ({ title: title(c.cmd), text: commandSection(c) }));
  const toc = sections.map((s) => `- [${code(s.title)}](#${slug(s.title)})`).join('\n');
  return [GENERATED_NOTE, toc, ...sections.map((s) => s.text)].join('\n\n');
}

// ---------------------------------------------------------------------------------------------------------
// README
// ---------------------------------------------------------------------------------------------------------

const current = readFileSync(readmeFile, 'utf8');
let before;
let after;
const start = current.indexOf(START);
const stop = current.indexOf(STOP, start + START.length);
if (start >= 0 && stop > start) {
  before = current.slice(0, start);
  after = current.slice(stop + STOP.length);
} else {
  if (current.includes(START) || current.includes(STOP)) {
    console.error(
      `cli-readme: apps/cli/README.md has only one of ${START} and ${STOP}; fix the markers by hand`,
    );
    process.exit(2);
  }
  // No reference yet: it goes below the hand-written introduction (the whole README so far).
  before = `${current.trimEnd()}\n\n# Commands\n\n`;
  after = '\n';
}

const headingsOutside = `${before}\n${after}`
  .split('\n')
  .filter((l) => /^#{1,6}\s/.test(l))
  .map((l) => l.replace(/^#+\s+/, '').replace(/\s+#*\s*$/, ''));
const generated = `${before}${START}\n\n${block(headingsOutside)}\n\n${STOP}${after}`;

// Prettier formats the whole file (the reference's formatting can depend on its surroundings), but only the
// part between the markers is taken from its output: the text outside them stays exactly as it was.
const prettierOptions = { ...((await prettier.resolveConfig(readmeFile)) ?? {}), filepath: readmeFile };
const formatted = await prettier.format(generated, prettierOptions);
const fStart = formatted.indexOf(START);
const fStop = formatted.indexOf(STOP, fStart + START.length);
if (fStart < 0 || fStop < 0) {
  console.error('cli-readme: prettier dropped the markers; cannot place the reference');
  process.exit(2);
}
const next = `${before}${formatted.slice(fStart, fStop + STOP.length)}${after}`;

if (!check) {
  if (next !== current) {
    writeFileSync(readmeFile, next);
    console.log(`cli-readme: wrote apps/cli/README.md (${commands.length} commands)`);
  } else console.log(`cli-readme: apps/cli/README.md is up to date (${commands.length} commands)`);
  process.exit(0);
}

if (next === current) {
  console.log(`cli-readme: apps/cli/README.md is up to date (${commands.length} commands)`);
  process.exit(0);
}
console.error(
  `cli-readme: apps/cli/README.md's command reference is stale:\n${describeStale(current, next)}`,
);
console.error(`Regenerate it: ${REGENERATE}`);
process.exit(1);

/** Which commands' sections differ between the README and what it should say, one line each. */
function describeStale(readme, wanted) {
  const inside = (text) => {
    const s = text.indexOf(START);
    const e = text.indexOf(STOP, s + START.length);
    return s >= 0 && e > s ? text.slice(s + START.length, e) : undefined;
  };
  const have = inside(readme);
  if (have === undefined) return `  - the README has no ${START} … ${STOP} section yet`;
  const sections = (text) => {
    const map = new Map();
    const [head, ...rest] = text.split(/^(?=## )/m);
    map.set('', head);
    for (const s of rest) {
      const heading = s.slice(3, s.indexOf('\n') < 0 ? undefined : s.indexOf('\n')).trim();
      map.set(commandOf(heading), s);
    }
    return map;
  };
  // `gc node drain NODE` → `gc node drain` (the words before the arguments).
  const commandOf = (heading) => {
    const words = heading.replace(/`/g, '').split(/\s+/);
    const end = words.findIndex((w, i) => i > 0 && !/^[a-z0-9][\w-]*$/.test(w));
    return (end < 0 ? words : words.slice(0, end)).join(' ');
  };
  const a = sections(have);
  const b = sections(inside(wanted) ?? '');
  const lines = [];
  for (const [id, text] of b) {
    if (id === '') continue;
    if (!a.has(id)) lines.push(`  - ${id}: missing (a new command)`);
    else if (a.get(id).trim() !== text.trim()) lines.push(`  - ${id}: out of date`);
  }
  for (const id of a.keys())
    if (id !== '' && !b.has(id)) lines.push(`  - ${id}: documented but no longer a command`);
  if ((a.get('') ?? '').trim() !== (b.get('') ?? '').trim()) lines.push('  - the table of contents');
  if (lines.length === 0) lines.push('  - the text between the markers (order or spacing)');
  return lines.join('\n');
}
