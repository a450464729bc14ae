import * as root from '../lib/index.js';

/** Every Error class the package exports, by its export name. */
const errorClasses = Object.entries(root as Record<string, unknown>).filter(
  (e): e is [string, new (...args: unknown[]) => Error] => typeof e[1] === 'function' && e[1].prototype instanceof Error,
);

/** An instance, whatever its constructor wants (a number: an errno or a message; RemoteError: bytes). */
function make(ErrorClass: new (...args: unknown[]) => Error): Error {
  return ErrorClass === (root.RemoteError as unknown) ? new ErrorClass(Buffer.from('x')) : new ErrorClass(1);
}

describe('error classes', () => {
  it('are named explicitly: a minifier renaming the classes changes no name (as undici sets its own)', () => {
    expect(errorClasses.length).toBeGreaterThan(20);
    for (const [exported, ErrorClass] of errorClasses) {
      const made = make(ErrorClass);
      // what a minifier does to a class: another constructor name; the error's name must not follow it
      Object.defineProperty(ErrorClass, 'name', { value: 'Xy', configurable: true }); // (capitalised: Nest's RpcException builds a message from its class name)
      try {
        expect([exported, made.name]).toEqual([exported, exported]);
        expect([exported, make(ErrorClass).name]).toEqual([exported, exported]);
      } finally {
        Object.defineProperty(ErrorClass, 'name', { value: exported, configurable: true });
      }
    }
  });

  it("an application's own subclass of OccamsError is named by its class", () => {
    class PaymentDeclined extends root.OccamsError {}
    expect(new PaymentDeclined('x', 'declined').name).toBe('PaymentDeclined');
  });
});
