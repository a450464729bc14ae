import { type DynamicModule, Inject, Module, type ModuleMetadata, type Provider, type Type } from '@nestjs/common';

import type { ServiceDefinition } from '../service/index.js';
import { checkNestOptions } from './nest-options.js';
import { OCCAMS_CLIENT_OPTIONS, OccamsClient, type OccamsClientOptions } from './occams-client.js';

/** One named client: `{ name: 'CALC', port: 7100 }`. */
export interface OccamsClientProviderOptions extends OccamsClientOptions {
  /** the injection token (`@InjectOccamsClient('CALC')`) */
  name: string | symbol;
  /** service definitions to provide typed clients of (`@InjectOccamsService('CALC', Calculator)`) */
  services?: ServiceDefinition[];
}

export interface OccamsClientOptionsFactory {
  createOccamsClientOptions(): Promise<OccamsClientOptions> | OccamsClientOptions;
}

/** One named client configured at run time (ConfigService and friends). */
export interface OccamsClientAsyncProviderOptions extends Pick<ModuleMetadata, 'imports'> {
  name: string | symbol;
  /** service definitions to provide typed clients of (`@InjectOccamsService('CALC', Calculator)`) */
  services?: ServiceDefinition[];
  useFactory?: (...args: any[]) => Promise<OccamsClientOptions> | OccamsClientOptions;
  inject?: any[];
  useClass?: Type<OccamsClientOptionsFactory>;
  useExisting?: Type<OccamsClientOptionsFactory>;
  extraProviders?: Provider[];
}

export type OccamsModuleOptions = OccamsClientProviderOptions[] | { clients: OccamsClientProviderOptions[]; isGlobal?: boolean };
export type OccamsModuleAsyncOptions = OccamsClientAsyncProviderOptions[] | { clients: OccamsClientAsyncProviderOptions[]; isGlobal?: boolean };

/** Injects the client registered under `name`. */
export const InjectOccamsClient = (name: string | symbol): ParameterDecorator & PropertyDecorator => Inject(name) as ParameterDecorator & PropertyDecorator;

/**
 * The provider token of the typed client of `def` through the client `name`
 * (listed in that client's `services`), for `moduleRef.get()`.
 */
export function occamsServiceToken(name: string | symbol, def: ServiceDefinition): string {
  return `nestjs-occams:${String(name)}:${def.name}`;
}

/**
 * Injects the typed client of `def` (an OccamsServiceClient) through the
 * client registered under `name` with `services: [def]`:
 *
 *   constructor(@InjectOccamsService('CALC', Calculator) private readonly calc: OccamsServiceClient<typeof Calculator>) {}
 */
export const InjectOccamsService = (name: string | symbol, def: ServiceDefinition): ParameterDecorator & PropertyDecorator =>
  Inject(occamsServiceToken(name, def)) as ParameterDecorator & PropertyDecorator;

/** The typed clients a client's `services` ask for, each built from that client. */
function serviceProviders(name: string | symbol, services: ServiceDefinition[] | undefined): { providers: Provider[]; tokens: string[] } {
  const list = services ?? [];
  const tokens = list.map((def) => occamsServiceToken(name, def));
  const providers = list.map((def, i) => ({ provide: tokens[i]!, useFactory: (client: OccamsClient) => client.service(def), inject: [name] }));
  return { providers, tokens };
}

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
    const providers: Provider[] = [];
    const exported: (string | symbol)[] = [];
    for (const { name, services, ...clientOptions } of clients) {
      checkNestOptions(clientOptions, OCCAMS_CLIENT_OPTIONS, 'OccamsClient'); // a misspelt key fails where it is written
      const typed = serviceProviders(name, services);
      providers.push({ provide: name, useFactory: () => new OccamsClient(clientOptions) }, ...typed.providers);
      exported.push(name, ...typed.tokens);
    }
    return { module: OccamsModule, global: isGlobal, providers, exports: exported };
  }

  static registerAsync(options: OccamsModuleAsyncOptions): DynamicModule {
    const { clients, isGlobal } = Array.isArray(options) ? { clients: options, isGlobal: false } : options;
    const providers: Provider[] = [];
    const imports: NonNullable<ModuleMetadata['imports']> = [];
    const exported: (string | symbol)[] = [];
    for (const c of clients) {
      imports.push(...(c.imports ?? []));
      providers.push(...(c.extraProviders ?? []));
      if (c.useClass) providers.push({ provide: c.useClass, useClass: c.useClass });
      const typed = serviceProviders(c.name, c.services);
      providers.push(clientProvider(c), ...typed.providers);
      exported.push(c.name, ...typed.tokens);
    }
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
