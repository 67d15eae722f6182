// Types for the `hashring` npm package (it ships none); only what the benchmark uses.
declare module 'hashring' {
  export default class HashRing {
    constructor(
      servers: string[] | Record<string, unknown>,
      algorithm?: string,
      options?: Record<string, unknown>,
    );
    get(key: string): string;
    add(server: string): this;
    remove(server: string): this;
  }
}
