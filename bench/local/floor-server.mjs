// The floor for the broadcast benchmark (bench/local/run.mjs): a bare `ws` server that relays every
// text message to every open client, itself included. No authorizer, no connection registry, no
// Lambda worker, no @connections HTTP hop: what is left is the cost of WebSocket framing and I/O,
// which the gateway pays too. It runs in its own process, as the gateway does, so both compete with
// the benchmark's clients for the CPUs in the same way.
import { WebSocket, WebSocketServer } from 'ws';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => {
    for (const client of server.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
server.on('listening', () => console.log(`READY ws://127.0.0.1:${server.address().port}`));
// The benchmark stops this process with SIGTERM; its stdin closing means the benchmark is gone,
// and a lost parent must not leave a server running.
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0)).resume();
