/** Stops an app gracefully on SIGTERM/SIGINT (answers what is in flight), then exits 0. */
export function exitGracefully(name: string, app: { close(): Promise<void> }): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void app.close().then(
        () => {
          console.log(`${name} stopped (${signal})`);
          process.exit(0);
        },
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    });
  }
}
