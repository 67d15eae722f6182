// The client host of the vip-vs-keepalived bench, run inside its own network namespace. On
// {cmd:'watch', id, url, old} it sends a fresh HTTP GET (new TCP connection, 1 s timeout) to the VIP every
// 20 ms, whether or not earlier ones have answered, and reports:
//   {type:'steady', id, at}           after 3 answers in a row from `old` (the current holder),
//   {type:'switched', id, body, at}   at the first answer from any other host (`at`: when it arrived),
//   {type:'gave-up', id, errors}      when nothing but `old` or errors came for 60 s.
// On {cmd:'current', id, url} it reports {type:'current', id, body} once 3 answers in a row agree
// (or {type:'current', id, body: null} after 30 s).
import { get } from 'node:http';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const POLL_MS = 20;

function fetchBody(url: string): Promise<string> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body.trim()));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    req.on('timeout', () => {
      req.destroy();
      resolve('error timeout');
    });
  });
}

/** Polls every POLL_MS until `onAnswer` returns true or `limitMs` passes; answers are handled in order of arrival. */
function poll(
  url: string,
  limitMs: number,
  onAnswer: (body: string, at: number) => boolean,
): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(limit);
      resolve(v);
    };
    const tick = () => {
      void fetchBody(url).then((body) => {
        if (!done && onAnswer(body, now())) finish(true);
      });
    };
    const timer = setInterval(tick, POLL_MS);
    const limit = setTimeout(() => finish(false), limitMs);
    tick();
  });
}

process.on('message', (m: { cmd: string; id: number; url: string; old?: string }) => {
  if (m.cmd === 'current') {
    let last = '';
    let run = 0;
    void poll(m.url, 30_000, (body) => {
      run = body === last ? run + 1 : 1;
      last = body;
      return run >= 3 && !body.startsWith('error');
    }).then((ok) => process.send?.({ type: 'current', id: m.id, body: ok ? last : null }));
  }
  if (m.cmd === 'watch') {
    let oldInARow = 0;
    let steady = false;
    let errors = 0;
    void poll(m.url, 60_000, (body, at) => {
      if (body === m.old) {
        if (!steady && ++oldInARow >= 3) {
          steady = true;
          process.send?.({ type: 'steady', id: m.id, at });
        }
        return false;
      }
      if (body.startsWith('error')) {
        errors++;
        oldInARow = 0;
        return false;
      }
      if (!steady) return false; // not yet watching from a known state
      process.send?.({ type: 'switched', id: m.id, body, at, errors });
      return true;
    }).then((ok) => {
      if (!ok) process.send?.({ type: 'gave-up', id: m.id, errors, steady });
    });
  }
});
process.send?.({ type: 'ready' });
