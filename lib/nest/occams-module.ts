import { type DynamicModule, Inject, Module, type ModuleMetadata, type Provider, type Type } from '@nestjs/common';
import { OCCAMS_CLIENT_OPTIONS, OccamsClient, type OccamsClientOptions } from './occams-client.js';
import { checkNestOptions } from './nest-options.js';

/** One named client: `{ name: 'CALC', port: 7100 }`. */
export interface OccamsClientProviderOptions extends OccamsClientOptions {
  /** the injection token (`@InjectOccamsClient('CALC')`) */
  name: string | symbol;
}

export interface OccamsClientOptionsFactory {
  createOccamsClientOptions(): Promise<OccamsClientOptions> | OccamsClientOptions;
}

/** One named client configured at run time (ConfigService and friends). */
export interface OccamsClientAsyncProviderOptions extends Pick<ModuleMetadata, 'imports'> {
  name: string | symbol;
  useFactory?: (...args: any[]) => Promise<OccamsClientOptions> | OccamsClientOptions;
  inject?: any[];
  useClass?: Type<OccamsClientOptionsFactory>;
  useExisting?: Type<OccamsClientOptionsFactory>;
  extraProviders?: Provider[];
}

export type OccamsModuleOptions = OccamsClientProviderOptions[] | { clients: OccamsClientProviderOptions[]; isGlobal?: boolean };
export type OccamsModuleAsyncOptions =
  | OccamsClientAsyncProviderOptions[]
  | { clients: OccamsClientAsyncProviderOptions[]; isGlobal?: boolean };

/** Injects the client registered under `name`. */
export const InjectOccamsClient = (name: string | symbol): ParameterDecorator & PropertyDecorator =>
  Inject(name) as ParameterDecorator & PropertyDecorator;

/**
 * Named OccamsClient providers, shaped like Nest's ClientsModule:
 *   OccamsModule.register([{ name: 'CALC', port: 7100 }])
 *   OccamsModule.registerAsync([{ name: 'CALC', imports: [ConfigModule], inject: [ConfigService],
 *                                 useFactory: (c: ConfigService) => ({ port: c.get('CALC_PORT') }) }])
 * Each application built from the module gets clients of its own (factory
 * providers), closed when that application closes: two apps from one module
 * definition, one after the other (e2e tests' beforeEach/afterEach), each
 * connect afresh.
 */
@Module({})
export class OccamsModule {
  static register(options: OccamsModuleOptions): DynamicModule {
    const { clients, isGlobal } = Array.isArray(options) ? { clients: options, isGlobal: false } : options;
    const providers: Provider[] = clients.map(({ name, ...clientOptions }) => {
      checkNestOptions(clientOptions, OCCAMS_CLIENT_OPTIONS, 'OccamsClient'); // a misspelt key fails where it is written
      return { provide: name, useFactory: () => new OccamsClient(clientOptions) };
    });
    return { module: OccamsModule, global: isGlobal, providers, exports: clients.map((c) => c.name) };
  }

  static registerAsync(options: OccamsModuleAsyncOptions): DynamicModule {
    const { clients, isGlobal } = Array.isArray(options) ? { clients: options, isGlobal: false } : options;
    const providers: Provider[] = [];
    const imports: NonNullable<ModuleMetadata['imports']> = [];
    for (const c of clients) {
      imports.push(...(c.imports ?? []));
      providers.push(...(c.extraProviders ?? []));
      if (c.useClass) providers.push({ provide: c.useClass, useClass: c.useClass });
      providers.push(clientProvider(c));
    }
    const exported = clients.map((c) => c.name);
    return { module: OccamsModule, global: isGlobal, imports, providers, exports: exported };
  }
}

function clientProvider(c: OccamsClientAsyncProviderOptions): Provider {
  if (c.useFactory) {
    return {
      provide: c.name,
      useFactory: async (...args: unknown[]) => new OccamsClient(await c.useFactory!(...args)),
      inject: c.inject ?? [],
    };
  }
  const factoryClass = c.useClass ?? c.useExisting;
  if (!factoryClass) throw new Error(`OccamsModule.registerAsync: client ${String(c.name)} needs useFactory, useClass or useExisting`);
  return {
    provide: c.name,
    useFactory: async (factory: OccamsClientOptionsFactory) => new OccamsClient(await factory.createOccamsClientOptions()),
    inject: [factoryClass],
  };
}
