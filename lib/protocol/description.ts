/**
 * The body of the DESCRIBE answer (server reflection, docs/PROTOCOL.md):
 * what a server with `reflection` on serves. Plain values, encoded with
 * the connection's codec like any result.
 */

/** One method of a typed service, as reflection tells it. */
export interface MethodDescription {
  /** the method's key in the definition (`mightFail`) */
  name: string;
  /** the action string it travels as (`Calculator.might_fail_with_errno`) */
  pattern: string;
  /** one value, or a stream of items */
  kind: 'method' | 'stream';
  /** the declared error's wire form, when the method declares one */
  errors?: 'errno' | 'message' | 'value';
  /** the declared error class's name */
  errorClass?: string;
  /** declared safe to run twice */
  idempotent?: boolean;
}

/** One typed service (defineService) a server serves. */
export interface ServiceDescription {
  name: string;
  methods: MethodDescription[];
}

/** What a Dispatch says it serves (all optional: a Dispatch may say nothing). */
export interface DispatchDescription {
  /** every pattern answered with a result, sorted */
  patterns?: string[];
  /** every pattern handled as an event (no answer), sorted */
  events?: string[];
  /** the typed services among the patterns */
  services?: ServiceDescription[];
}

/** The DESCRIBE answer. */
export interface ServerDescription extends Required<DispatchDescription> {
  /** wire protocol version (1) */
  protocol: number;
  /** extensions revision (HELLO's `v`); 0 when the server has the extensions off */
  extensions: number;
  /** the extension feature bits the server speaks (HELLO's `f` before intersection) */
  features: number;
  /** the server library and its version */
  server: string;
  version: string;
}
