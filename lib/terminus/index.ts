// `nestjs-occams/terminus`: health checks for @nestjs/terminus (an optional peer dependency).
export { DEFAULT_HEALTH_TIMEOUT, OccamsHealthIndicator, type OccamsPingCheckOptions, type OccamsServerHealth } from './occams-health-indicator.js';
