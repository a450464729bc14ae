/**
 * occams through Nest, called with OccamsClient's Promise form
 * (`client.request()`, no RxJS) instead of `firstValueFrom(client.send())`:
 * what the Nest call style costs a client, on the same server.
 */
import { OccamsClient, OccamsModule } from '../../lib/index.js';
import { nestClientContext } from '../nest-echo.js';
import { type BenchTransport, benchWindow } from '../transport.js';
import occams from './occams.js';

const transport: BenchTransport = {
  name: 'occams-request',
  serve: occams.serve,
  async connect(port) {
    const { client, close } = await nestClientContext<OccamsClient>(OccamsModule.register([{ name: 'ECHO', host: '127.0.0.1', port, maxInFlight: benchWindow() }]));
    await client.connect();
    return { call: (payload) => client.request('echo', payload), close };
  },
};
export default transport;
