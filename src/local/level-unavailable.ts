/**
 * Stands in for `level` (dynalite's on-disk store, a native addon) in the bundled CLI: the local
 * gateway keeps its tables in memory, so the on-disk store is never opened.
 */
export class Level {
  constructor() {
    throw new Error('authws local keeps its tables in memory; the on-disk store is not bundled.');
  }
}
