/**
 * What was made once for a list of field names, found again only for a list equal to it name for
 * name. WeChat Pay sends each kind of document with the same fields in the same order every time,
 * so a few lists cover the documents a function reads, and whatever was made for one is made once.
 */
export class ByNameList<T> {
  private readonly entries: Array<{ names: readonly string[]; value: T }> = [];
  private readonly size: number;
  private readonly longest: number;

  /** Remembers `size` lists at most, each of `longest` names at most. */
  constructor(size: number, longest: number) {
    this.size = size;
    this.longest = longest;
  }

  get(names: readonly string[]): T | undefined {
    for (const entry of this.entries) if (sameNames(entry.names, names)) return entry.value;
    return undefined;
  }

  /** `names` must not change afterwards. The list remembered longest ago is forgotten first. */
  remember(names: readonly string[], value: T): void {
    if (names.length > this.longest) return;
    if (this.entries.length === this.size) this.entries.pop();
    this.entries.unshift({ names, value });
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}
