/**
 * The only request body parser: JSON. Besides syntax it refuses what would otherwise fail deep inside the
 * stack with a 500: nesting beyond MAX_JSON_DEPTH (PostgreSQL's jsonb parser and recursive code have stack
 * limits), strings PostgreSQL cannot store (NUL, lone UTF-16 surrogates), prototype-poisoning keys, and
 * numbers beyond a double's range (which would silently become null).
 */
import { errorCodes } from 'fastify';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './apiError.ts';
import type { FieldProblem } from './apiError.ts';

/** Deeper documents are refused before parsing. */
const MAX_JSON_DEPTH = 64;

const JSON_CONTENT_TYPES = ['application/json', /^application\/[a-z0-9.-]+\+json$/i] as const;

/** Nesting depth of a JSON text, counted outside string literals; stops early past `limit`. */
function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
    }
  }
  return max;
}

// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
const UNSTORABLE = /[\u0000\p{Cs}]/u;

function unstorable(value: unknown, path: string[], found: FieldProblem[]): void {
  if (found.length >= 10) return;
  // JSON.parse turns 1e400 into Infinity, which JSON.stringify then writes as null: the value would be lost.
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      found.push({
        field: path.join('.') || '(body)',
        location: 'body',
        message:
          'is a number out of range: JSON numbers must be within ±1.7976931348623157e308; send large values as strings',
      });
    }
    return;
  }
  if (typeof value === 'string') {
    if (UNSTORABLE.test(value)) {
      found.push({
        field: path.join('.') || '(body)',
        location: 'body',
        message: value.includes('\u0000')
          ? 'contains a NUL character (\\u0000), which PostgreSQL cannot store; remove it'
          : 'contains an unpaired UTF-16 surrogate (such as \\ud800 without its pair), which PostgreSQL cannot store; send valid Unicode',
      });
    }
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => unstorable(item, [...path, String(index)], found));
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (
        key === '__proto__' ||
        (key === 'constructor' && typeof item === 'object' && item !== null && 'prototype' in item)
      ) {
        found.push({
          field: [...path, key].join('.'),
          location: 'body',
          message: 'is a forbidden key (prototype poisoning)',
        });
        continue;
      }
      if (UNSTORABLE.test(key)) {
        found.push({
          field: [...path, key.replace(UNSTORABLE, '?')].join('.'),
          location: 'body',
          message: 'is a key with a NUL character or an unpaired UTF-16 surrogate; rename it',
        });
      }
      unstorable(item, [...path, key], found);
    }
  }
}

function parseJsonBody(text: string): unknown {
  // An empty body is "no body": routes that need one say so through their own validation.
  if (text.trim() === '') return undefined;
  const depth = jsonDepth(text, MAX_JSON_DEPTH);
  if (depth > MAX_JSON_DEPTH) {
    throw new ApiError(
      400,
      'TASKER_JSON_TOO_DEEP',
      `request body nests objects/arrays more than ${MAX_JSON_DEPTH} levels deep; flatten it`,
      { details: { max_depth: MAX_JSON_DEPTH } },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof SyntaxError ? error.message : 'unparseable';
    throw new ApiError(
      400,
      'TASKER_MALFORMED_JSON',
      `request body is not valid JSON (${reason}); send a JSON object`,
      {
        cause: error,
      },
    );
  }
  // Cheap pre-checks: the walk runs only for bodies that could hold a problem (an exponent of 3 digits or 309
  // digits in a row may be a number beyond a double's range).
  if (/\\u0000|\\u[dD][89a-fA-F]|__proto__|constructor|[eE]\+?\d{3}|\d{309}/.test(text)) {
    const problems: FieldProblem[] = [];
    unstorable(value, [], problems);
    if (problems.length > 0) {
      throw new ApiError(
        400,
        'TASKER_INVALID_REQUEST',
        `invalid request body: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`,
        { details: { fields: problems } },
      );
    }
  }
  return value;
}

/** An announced body over the limit is read and dropped up to this many times the limit before the 413. */
const DRAIN_FACTOR = 16;
/** ...and never more than this: a bigger body gets the 413 at once and the connection is closed under it. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Replaces fastify's parsers: JSON only, anything else is 415. A body whose Content-Length is over the limit
 * is refused with 413 only after it has arrived: fastify answers at once and closes the connection while the
 * client is still sending, and a client busy writing then sees the write fail (EPIPE) instead of the answer
 * (seen in the end-to-end hostile-request test on a loaded machine). Reading a few megabytes to drop them costs
 * less than a client that cannot tell why it failed.
 */
export function registerJsonBodyParser(app: FastifyInstance, bodyLimitBytes: number): void {
  const drainLimit = Math.min(bodyLimitBytes * DRAIN_FACTOR, DRAIN_MAX_BYTES);
  app.addHook('onRequest', async (request) => {
    const announced = Number(request.headers['content-length']);
    if (!(announced > bodyLimitBytes && announced <= drainLimit)) return;
    await new Promise<void>((resolve) => {
      request.raw.on('end', resolve).on('error', resolve).on('close', resolve).resume();
    });
    throw new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE();
  });
  app.removeAllContentTypeParsers();
  for (const contentType of JSON_CONTENT_TYPES) {
    app.addContentTypeParser(
      contentType,
      { parseAs: 'string', bodyLimit: bodyLimitBytes },
      (_request, body: string, done) => {
        try {
          done(null, parseJsonBody(body));
        } catch (error) {
          done(error as Error, undefined);
        }
      },
    );
  }
}
