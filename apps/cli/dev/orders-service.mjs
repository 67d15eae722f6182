// The example service `gc dev` runs as the process backend of its "orders" app: a small HTTP service
// that keeps its data in the app's replicated SQLite database. Only the active node runs it; after a
// failover the new leader's copy has every committed order.
//   GET /        -> records an order, answers { node, orders }
//   GET /count   -> { node, orders } without recording one
//   GET /health  -> 200 once the database is open
import { createServer } from 'node:http';
import { openDatabase } from '@gc/snapshot';

const { PORT, DB, NODE_ID } = process.env;
const db = openDatabase(DB);
db.pragma('busy_timeout = 5000');
db.exec(
  'CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, node TEXT NOT NULL, at INTEGER NOT NULL)',
);
const insert = db.prepare('INSERT INTO orders (node, at) VALUES (?, ?)');
const count = db.prepare('SELECT count(*) AS n FROM orders');

const server = createServer((req, res) => {
  if (req.url === '/health') return void res.end('ok');
  if (req.url !== '/count') insert.run(NODE_ID, Date.now());
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ node: NODE_ID, orders: count.get().n }));
});
server.listen(Number(PORT), '127.0.0.1', () => console.log(`orders service on ${PORT} (${NODE_ID})`));
process.on('SIGTERM', () => {
  server.close();
  db.close();
  process.exit(0);
});
