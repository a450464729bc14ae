// What making a large string costs here (issue 29, bench/results/writes-per-call.md): msgpackr pack/unpack of the mixed
// object with a <bytes>-byte ASCII string, Buffer#toString utf8/latin1, TextDecoder, utf8Write, and our codec's session.
// usage: node bench/string-costs.mjs [bytes 1048576]   (after npx tsc -p tsconfig.build.json; any node binary)
import { Packr } from 'msgpackr';
const { MsgpackCodec } = await import(new URL('../dist/lib/codec/msgpack-codec.js', import.meta.url).href);
const n = Number(process.argv[2] ?? 1048576);
const v = { id: 12345, name: 'occams-bench', tags: ['alpha', 'beta', 'gamma', 'delta'], ok: true, score: 0.75, text: 'x'.repeat(n) };
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, mapsAsObjects: true, moreTypes: false, bundleStrings: false, structuredClone: false });
const scratch = Buffer.allocUnsafeSlow(4 * n + 65536);
packr.useBuffer(scratch);
const bytes = Buffer.from(packr.pack(v));
const t = (name, f, k = 200) => { for (let i = 0; i < 20; i++) f(); const s = process.hrtime.bigint(); for (let i = 0; i < k; i++) f(); console.log(name, (Number(process.hrtime.bigint() - s) / k / 1000).toFixed(1), 'µs'); };
t('pack', () => { packr.useBuffer(scratch); packr.pack(v); });
t('unpack', () => packr.unpack(bytes));
t('toString utf8', () => bytes.toString('utf8', 40, 40 + n));
t('latin1', () => bytes.toString('latin1', 40, 40 + n));
const td = new TextDecoder();
t('TextDecoder', () => td.decode(bytes.subarray(40, 40 + n)));
t('utf8Write', () => scratch.utf8Write(v.text, 0));
const ses = new MsgpackCodec().session(); const sesd = new MsgpackCodec().session();
const sb = Buffer.from(ses.encode(v)); sesd.decode(sb);
t('session decode', () => sesd.decode(sb));
const arena = Buffer.allocUnsafe(4 * n + 65536);
t('session encodeInto', () => ses.encodeInto(v, arena, 40));
