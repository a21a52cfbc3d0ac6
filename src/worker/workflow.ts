/**
 * Workflows defined in TypeScript, beside YAML templates. A workflow becomes exactly the TaskTemplate a YAML
 * file with the same content would (it goes through the same parser, so it gets the same validation,
 * defaults and messages), plus one handler per step. Step results are typed along the edges: a step names
 * its parents by reference and reads their results with `ctx.parent(step)`, typed by the parent's `run`.
 *
 * The exports marked `@public` are public API (docs/workflows.md); `isWorkflow` is for the handlers-module loader.
 */
import type { $ZodType, input as ZodInput, output as ZodOutput } from 'zod/v4/core';
import { safeParseAsync, toJSONSchema } from 'zod/v4/core';
import { ValidationError } from '../domain/errors.ts';
import type {
  IdentityStrategy,
  LifecyclePolicy,
  RetryPolicy,
  TaskTemplate,
} from '../domain/template/taskTemplate.ts';
import { validateTemplateDocument } from '../domain/template/templateParser.ts';
import type { WorkflowOutputShape, WorkflowReference } from '../domain/workflowRun.ts';
import { PermanentError } from './handlerApi.ts';
import type { StepContext, StepHandlerDefinition } from './handlerApi.ts';
import { describeWorkflowPath, templateDocument } from './workflowDocument.ts';
import type { StepDeclaration } from './workflowDocument.ts';

/** A JSON Schema (draft 2020-12 or 7) as a plain object. */
type JsonSchemaObject = Readonly<Record<string, unknown>>;

/**
 * What a workflow's input may be described with: a zod 4 schema (becomes the template's `input_schema` through
 * `z.toJSONSchema`, and types `ctx.input`) or a JSON Schema object (taken as written; `ctx.input` is a record).
 * @public
 */
export type WorkflowInputSchema = $ZodType | JsonSchemaObject;

/** `ctx.input`: the zod schema's output (the context is parsed by it before each step), or a plain record. */
type ParsedInput<Schema> = Schema extends $ZodType ? ZodOutput<Schema> : Record<string, unknown>;
/** What callers submit as the task context: the zod schema's input, or a plain record. */
type SubmittedInput<Schema> = Schema extends $ZodType ? ZodInput<Schema> : Record<string, unknown>;

/** Type-only key: a step's result type travels with its reference and has no runtime value. */
declare const stepResult: unique symbol;

/**
 * A reference to a step, returned by `flow.step(...)`: list it in another step's `parents` and read its result
 * there with `ctx.parent(ref)`.
 * @public
 */
export interface WorkflowStep<Name extends string = string, Result = unknown> {
  readonly name: Name;
  /** `namespace/name@version` of the workflow the step belongs to. */
  readonly workflow: string;
  /** The handler name the step's template names (`handler.callable`). */
  readonly callable: string;
  readonly [stepResult]?: Result;
}

/** The result type a step reference carries. @public */
export type StepResult<Step> = Step extends WorkflowStep<string, infer Result> ? Result : never;

/**
 * What a workflow step's `run` receives: everything a StepContext has, the input typed (and parsed) by the
 * workflow's schema, and `parent(step)`, which accepts only the steps listed in `parents`.
 * @public
 */
export interface WorkflowContext<Input, Parents extends readonly WorkflowStep[]> extends StepContext<Input> {
  /** The result of a parent step, typed by that step's `run`. */
  parent<Parent extends Parents[number]>(step: Parent): StepResult<Parent>;
}

/**
 * The retry keys of a YAML step (`retry:`) in camelCase; what is left out takes the template default
 * (3 attempts, exponential backoff from 1000 ms to at most 30000 ms).
 * @public
 */
export type WorkflowRetry = Partial<RetryPolicy>;

/** @public */
export interface WorkflowStepOptions<Input, Parents extends readonly WorkflowStep[], Result> {
  description?: string;
  /** Steps that must complete before this one (the YAML `dependencies`); declared earlier on the same workflow. */
  parents?: Parents;
  /**
   * The handler name in the template (`handler.callable`).
   * @defaultValue `<namespace>.<workflow>.<step>@<version>`
   */
  handler?: string;
  retry?: WorkflowRetry;
  /** 1..86400; left out, the worker's default handler timeout applies. */
  timeoutSeconds?: number;
  /** Static configuration (the YAML `handler.initialization`), handed to `run` as `ctx.config`. */
  config?: Record<string, unknown>;
  /** The step's work; its (JSON) result is what `ctx.parent(thisStep)` returns in the steps after it. */
  run: (context: WorkflowContext<Input, Parents>) => Result | Promise<Result>;
}

/** @public */
export interface WorkflowOptions<Schema extends WorkflowInputSchema> {
  /** 1-34 characters of lowercase letters, digits and underscores. */
  namespace: string;
  /** 1-64 characters of lowercase letters, digits and underscores. */
  name: string;
  /** Semantic version, e.g. 1.0.0. */
  version: string;
  description?: string;
  /** The task context's schema; left out, any object is accepted. */
  input?: Schema;
  /** @defaultValue 'strict' */
  identity?: IdentityStrategy;
  /** The YAML `lifecycle` keys in camelCase; each left out takes the orchestration default. */
  lifecycle?: Partial<LifecyclePolicy>;
  metadata?: Record<string, unknown>;
}

/**
 * What `returns(...)` declares as a finished task's output: one step's result, or a record of step results.
 * @public
 */
export type WorkflowOutputOf<Shape> =
  Shape extends WorkflowStep<string, infer Result>
    ? Result
    : { -readonly [Key in keyof Shape]: StepResult<Shape[Key]> };

/** Every step's result by step name: the output of a workflow that declares none. */
type AllStepResults = Record<string, unknown>;

/** The runtime record of one step: its reference, its template declaration and its function. */
interface StepRecord {
  ref: WorkflowStep;
  declaration: StepDeclaration;
  parents: ReadonlySet<WorkflowStep>;
  run: (context: WorkflowContext<unknown, readonly WorkflowStep[]>) => unknown;
}

/** Marks workflows across copies of this package (a handlers module may import another copy), unlike instanceof. */
const WORKFLOW_MARKER = Symbol.for('tasker.workflow');

/**
 * A workflow under construction: add steps with `step`, then take `template()` and `handlers()` (a worker
 * loading a handlers module does that for every exported workflow).
 * @public
 */
export class Workflow<
  Input = Record<string, unknown>,
  Submitted = Record<string, unknown>,
  Output = AllStepResults,
> implements WorkflowReference<Submitted, Output> {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  /** How a finished task's output is read (set by `returns`); left out, every step's result by name. */
  outputShape: WorkflowOutputShape | undefined;
  /** Type-only: the task context callers submit and the output a finished task answers. Never set at runtime. */
  declare readonly '~types'?: { readonly input: Submitted; readonly output: Output };
  private readonly options: WorkflowOptions<WorkflowInputSchema>;
  private readonly records = new Map<string, StepRecord>();
  private built: TaskTemplate | undefined;

  constructor(options: WorkflowOptions<WorkflowInputSchema>) {
    this.namespace = options.namespace;
    this.name = options.name;
    this.version = options.version;
    this.options = options;
    Object.defineProperty(this, WORKFLOW_MARKER, { value: true });
  }

  /** `namespace/name@version`, as errors name the workflow. */
  get label(): string {
    return `${this.namespace}/${this.name}@${this.version}`;
  }

  /**
   * Adds a step. Its parents must be steps of this workflow, so declaration order is a topological order and
   * a workflow cannot have a cycle.
   * @throws ValidationError TASKER_INVALID_WORKFLOW for a duplicate step name, a parent from another workflow, or a
   *   step added after `template()` or `handlers()` was taken
   */
  step<const Name extends string, Result, const Parents extends readonly WorkflowStep[] = []>(
    name: Name,
    options: WorkflowStepOptions<Input, Parents, Result>,
  ): WorkflowStep<Name, Awaited<Result>> {
    if (this.built !== undefined) {
      throw this.error(
        `step "${name}" was added after the workflow's template or handlers were taken; ` +
          'declare every step before calling template() or handlers() (or exporting the workflow to a worker)',
      );
    }
    if (this.records.has(name)) {
      throw this.error(`two steps are named "${name}": step names must be unique within a workflow`);
    }
    const parents = options.parents ?? [];
    for (const parent of parents) {
      if (this.records.get(parent.name)?.ref !== parent) {
        throw this.error(
          `step "${name}" lists parent "${parent.name}" of workflow ${parent.workflow}; parents must be steps ` +
            'declared earlier on this workflow',
        );
      }
    }
    const callable = options.handler ?? `${this.namespace}.${this.name}.${name}@${this.version}`;
    const ref: WorkflowStep<Name, Awaited<Result>> = Object.freeze({ name, workflow: this.label, callable });
    this.records.set(name, {
      ref,
      parents: new Set(parents),
      run: options.run as StepRecord['run'],
      declaration: {
        name,
        description: options.description,
        callable,
        config: options.config,
        parents: options.parents?.map((parent) => parent.name),
        retry: options.retry,
        timeoutSeconds: options.timeoutSeconds,
      },
    });
    return ref;
  }

  /**
   * Declares the output of a finished task, which `run`/`result()` of the client, embedding and test helpers
   * answer, typed: one step's result (`returns(receipt)`), or a record of step results
   * (`returns({ charged: charge, receipt })`). Left out, the output is every step's result by step name.
   * Returns this workflow, typed with that output: export what it returns.
   * @throws ValidationError TASKER_INVALID_WORKFLOW for a step of another workflow, or a second call
   */
  returns<const Shape extends WorkflowStep | Readonly<Record<string, WorkflowStep>>>(
    shape: Shape,
  ): Workflow<Input, Submitted, WorkflowOutputOf<Shape>> {
    if (this.outputShape !== undefined) {
      throw this.error('returns() was called twice; declare the output once');
    }
    const stepName = (step: WorkflowStep, where: string): string => {
      if (this.records.get(step.name)?.ref !== step) {
        throw this.error(
          `returns() names step "${String(step.name)}"${where} of workflow ${String(step.workflow)}; the output ` +
            'must be read from steps of this workflow',
        );
      }
      return step.name;
    };
    this.outputShape = isStepReference(shape)
      ? stepName(shape, '')
      : Object.freeze(
          Object.fromEntries(
            Object.entries(shape).map(([key, step]) => [key, stepName(step, ` (as "${key}")`)]),
          ),
        );
    return this as unknown as Workflow<Input, Submitted, WorkflowOutputOf<Shape>>;
  }

  /**
   * The TaskTemplate the equivalent YAML file would parse to. Taking it ends the definition: no step may be
   * added afterwards.
   * @throws TemplateError (TASKER_INVALID_TEMPLATE) with every problem, named by workflow and step
   */
  template(): TaskTemplate {
    if (this.built !== undefined) return this.built;
    const { options } = this;
    const steps = [...this.records.values()].map((record) => record.declaration);
    const document = templateDocument({
      namespace: options.namespace,
      name: options.name,
      version: options.version,
      description: options.description,
      inputSchema: options.input === undefined ? undefined : this.inputJsonSchema(options.input),
      identity: options.identity,
      lifecycle: options.lifecycle,
      metadata: options.metadata,
      steps,
    });
    const template = validateTemplateDocument(
      document,
      `workflow ${this.label}`,
      describeWorkflowPath(steps.map((step) => step.name)),
    );
    this.built = template;
    return template;
  }

  /**
   * One handler per step, registered under the step's callable. Takes the template first, so an invalid
   * workflow has no handlers.
   * @throws TemplateError as `template()` does
   */
  handlers(): StepHandlerDefinition[] {
    this.template();
    const schema = isZodSchema(this.options.input) ? this.options.input : undefined;
    return [...this.records.values()].map((record) => ({
      name: record.ref.callable,
      run: async (context: StepContext) => {
        const input = schema === undefined ? context.input : await parseInput(schema, context, this.label);
        return record.run(workflowContext(context, input, record));
      },
    }));
  }

  private inputJsonSchema(input: WorkflowInputSchema): Record<string, unknown> {
    if (!isZodSchema(input)) return input;
    try {
      // The input side: what callers submit is what the template's schema checks at task creation.
      return toJSONSchema(input, { io: 'input' });
    } catch (error) {
      throw this.error(
        `its input schema cannot be written as JSON Schema (${(error as Error).message}); use schemas JSON ` +
          'Schema can express (transforms are fine: their input side is used), or pass a JSON Schema object',
        error,
      );
    }
  }

  private error(message: string, cause?: unknown): ValidationError {
    return new ValidationError('TASKER_INVALID_WORKFLOW', `workflow ${this.label}: ${message}`, {
      details: { workflow: this.label },
      ...(cause !== undefined && { cause }),
    });
  }
}

function isStepReference(value: unknown): value is WorkflowStep {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as WorkflowStep).name === 'string' &&
    typeof (value as WorkflowStep).callable === 'string'
  );
}

function isZodSchema(value: unknown): value is $ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

/**
 * Refinements have no JSON Schema form, so the template's schema can accept a context the zod schema refuses;
 * such a context fails the step for good instead of being retried.
 */
async function parseInput(schema: $ZodType, context: StepContext, label: string): Promise<unknown> {
  const parsed = await safeParseAsync(schema, context.input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  throw new PermanentError(
    `the task context does not match the input schema of workflow ${label}: ${issues.join('; ')}`,
    {
      code: 'TASKER_INVALID_CONTEXT',
    },
  );
}

function workflowContext(
  context: StepContext,
  input: unknown,
  record: StepRecord,
): WorkflowContext<unknown, readonly WorkflowStep[]> {
  const parent = (step: WorkflowStep): unknown => {
    // Reachable only by getting around the types (a cast, or JavaScript).
    if (!record.parents.has(step)) {
      throw new PermanentError(
        `step "${record.ref.name}" read the result of "${String(step?.name)}", which is not one of its parents; ` +
          "list it in the step's parents",
      );
    }
    return context.dependency(step.name);
  };
  // A view of the context (its prototype), so it keeps whatever the executor's context provides, getters included.
  return Object.assign(Object.create(context) as StepContext, { input, parent }) as WorkflowContext<
    unknown,
    readonly WorkflowStep[]
  >;
}

/** Whether a value is a Workflow, from this copy of the package or another. */
export function isWorkflow(value: unknown): value is Workflow<unknown, unknown, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[WORKFLOW_MARKER] === true &&
    typeof (value as { template?: unknown }).template === 'function' &&
    typeof (value as { handlers?: unknown }).handlers === 'function'
  );
}

/**
 * Starts a workflow definition:
 * `const flow = workflow({ namespace: 'payments', name: 'refund', version: '1.0.0', input: z.object({...}) })`.
 * @public
 */
export function workflow<Schema extends WorkflowInputSchema = JsonSchemaObject>(
  options: WorkflowOptions<Schema>,
): Workflow<ParsedInput<Schema>, SubmittedInput<Schema>> {
  return new Workflow<ParsedInput<Schema>, SubmittedInput<Schema>>(options);
}
