import { createHash, timingSafeEqual } from 'node:crypto';
import { PermissionSet } from '../../domain/auth/permissions.ts';
import type { ResolvedApiKey } from '../../config/authSettings.ts';

export interface ApiKeyHolder {
  /** Where the key is configured (`orchestration.web.auth.api_keys[0]`): names it without revealing it. */
  path: string;
  description: string;
  permissions: PermissionSet;
}

const digest = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/**
 * The configured API keys, held only as SHA-256 digests. A presented key is hashed and compared with every
 * digest in constant time, without stopping at a match, so neither the comparison nor the number of
 * comparisons tells how close a guess was or which entry it hit.
 */
export class ApiKeyRegistry {
  private readonly entries: { digest: Buffer; holder: ApiKeyHolder }[];

  constructor(keys: readonly ResolvedApiKey[]) {
    this.entries = keys.map((key) => ({
      digest: digest(key.key),
      holder: {
        path: key.path,
        description: key.description,
        permissions: new PermissionSet(key.permissions),
      },
    }));
  }

  get size(): number {
    return this.entries.length;
  }

  find(presented: string): ApiKeyHolder | undefined {
    const candidate = digest(presented);
    let found: ApiKeyHolder | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, candidate)) found ??= entry.holder;
    }
    return found;
  }
}
