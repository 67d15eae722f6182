// The tiny HTTP service of the vip-vs-keepalived bench, run as `node -e RESPONDER_SCRIPT` (plain
// JavaScript, so it starts as fast as Node can: gc starts it on activation, keepalived's runs all the
// time). It answers every request with its host's name. env: PORT, NAME, HOST (default 0.0.0.0).
export const RESPONDER_SCRIPT = `
const name = process.env.NAME || 'unknown';
require('node:http')
  .createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
    res.end(name);
  })
  .listen(Number(process.env.PORT), process.env.HOST || '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;
