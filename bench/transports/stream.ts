/** The stream layer alone: ClientStream -> RpcServer, loaded from its own entry (`nestjs-occams/stream`, no Nest in the process), as its users load it. */
import { ClientStream, MethodDispatch, RpcServer, silentLogger, type TcpAddress } from '../../lib/stream/index.js';
import { benchMaxFrame, type BenchTransport, benchWindow } from '../transport.js';

const transport: BenchTransport = {
  name: 'stream',
  async serve() {
    const server = new RpcServer(new MethodDispatch({ echo: (m: unknown) => m }), { logger: silentLogger, maxFrameSize: benchMaxFrame() });
    const address = (await server.listen('127.0.0.1:0')) as TcpAddress;
    return { port: address.port, close: () => server.close() };
  },
  async connect(port) {
    const stream = await ClientStream.connect({ host: '127.0.0.1', port }, { maxInFlight: benchWindow() });
    return {
      call: (payload) => stream.request('echo', payload),
      close: () => stream.close(),
    };
  },
};
export default transport;
