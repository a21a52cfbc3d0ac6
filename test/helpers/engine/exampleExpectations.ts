/**
 * What the example workflows compute (examples/templates with examples/handlers): each happy-path template,
 * the context it is run with, and the value every step must produce. Engine and end-to-end tests share it.
 */
export const HAPPY_PATHS = [
  {
    template: 'mathematical_sequence',
    context: { even_number: 2 },
    values: { linear_step_1: 4, linear_step_2: 16, linear_step_3: 256, linear_step_4: 65536 },
  },
  {
    template: 'diamond_pattern',
    context: { n: 3 },
    values: { diamond_start: 9, diamond_branch_b: 18, diamond_branch_c: 27, diamond_end: 45 },
  },
  {
    template: 'hierarchical_tree',
    context: { n: 1 },
    values: {
      tree_root: 1,
      tree_left: 2,
      tree_right: 3,
      tree_left_a: 3,
      tree_left_b: 4,
      tree_right_a: 4,
      tree_right_b: 5,
      tree_final: 16,
    },
  },
  {
    template: 'complex_dag',
    context: { n: 2 },
    values: {
      dag_init: 2,
      dag_process_left: 4,
      dag_process_right: 6,
      dag_validate: 10,
      dag_transform: 40,
      dag_analyze: 60,
      dag_finalize: 110,
    },
  },
];

/** The task states a task that succeeds passes through, in order (its transitions' to_state). */
export const HAPPY_TASK_PATH = [
  'pending',
  'initializing',
  'enqueuing_steps',
  'steps_in_process',
  'evaluating_results',
  'complete',
];
