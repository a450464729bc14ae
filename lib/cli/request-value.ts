import { UsageError } from './exit-codes.js';

/**
 * The request's value: the JSON argument, or stdin when the argument is
 * `-` (`echo '[1, 2]' | nestjs-occams call ADDRESS Calc.add -`); no
 * argument sends no value. Bad JSON is refused before anything is sent.
 */
export async function requestValue(arg: string | undefined, stdin: NodeJS.ReadableStream = process.stdin): Promise<unknown> {
  if (arg === undefined) return undefined;
  let text = arg;
  let where = 'the JSON argument';
  if (arg === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    text = Buffer.concat(chunks).toString('utf8');
    where = 'stdin';
    if (text.trim() === '') return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${where} is not JSON: ${(err as Error).message}`);
  }
}
