/**
 * The declared errors a typed client raised from a remote user error (the
 * instances `fromWireError` gave), so that an exception filter can catch
 * them all without listing their classes: `@Catch(DeclaredRemoteError)`
 * matches exactly those (by `instanceof`, which Nest's filter lookup uses).
 * A WeakSet: nothing is kept once the error is gone.
 */
const raised = new WeakSet<object>();

/** Marks `err` as a declared error raised from a remote user error (its `cause`). */
export function markDeclaredRemoteError(err: Error): void {
  raised.add(err);
}

/**
 * Never constructed: `x instanceof DeclaredRemoteError` is true for a typed
 * client's declared error raised from a remote user error (a `DivError`
 * whose `cause` is the `RemoteErrnoError` it was read from), false for
 * anything else, the same class thrown locally included.
 */
export abstract class DeclaredRemoteError {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && raised.has(value);
  }
}
