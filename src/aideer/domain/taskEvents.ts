// The events of a task's stream (A6): each has an id, increasing per task across restarts. A run's
// events are rebuilt from its text and one length per running event, so any instance that reads
// the row sends exactly the events the runner sent.
import type { TaskRow, TaskStatus } from '../store/rows.ts';

const ACTIVE: TaskStatus[] = ['pending', 'running'];

/** One event of a task's stream: the cumulative text while running, then the final state. */
export interface TaskEvent {
  id: number;
  status: TaskStatus;
  content: string | null;
}

/** What it takes to rebuild every event of a task's current run. */
export interface EventLog {
  /** Id of the run's first event. */
  firstSeq: number;
  /** The text's length at each running event of the run, in order (ids firstSeq, firstSeq + 1, …). */
  marks: number[];
  /** The text so far. */
  text: string;
  /** The final event, once the task ended. */
  final?: TaskEvent;
}

function finalOf(task: Pick<TaskRow, 'status' | 'content' | 'error' | 'event_seq'>): TaskEvent {
  return { id: task.event_seq, status: task.status, content: task.status === 'failed' ? task.error : task.content };
}

export function logOf(row: TaskRow): EventLog {
  // JSON.parse is typed `any`; event_marks is a number array this server wrote.
  return {
    firstSeq: row.run_first_seq,
    marks: row.event_marks ? (JSON.parse(row.event_marks) as number[]) : [],
    text: row.content ?? '',
    final: ACTIVE.includes(row.status) ? undefined : finalOf(row),
  };
}

/** The id of the log's last event (firstSeq - 1 when the run has sent none yet). */
export function lastId(log: EventLog): number {
  return log.final ? log.final.id : log.firstSeq + log.marks.length - 1;
}

/**
 * The events after id `after`, in order. Without `after`, only the latest (a client that joins
 * without a Last-Event-ID gets the current state at once). An id of an earlier run gets the whole
 * current run, which begins with the restart's reset event.
 */
export function eventsAfter(log: EventLog, after: number | undefined): TaskEvent[] {
  const last = lastId(log);
  const from = Math.max(after === undefined ? last : after + 1, log.firstSeq);
  const out: TaskEvent[] = [];
  const runningEnd = log.final
    ? Math.min(log.final.id, log.firstSeq + log.marks.length)
    : log.firstSeq + log.marks.length;
  for (let id = from; id < runningEnd; id++)
    out.push({ id, status: 'running', content: log.text.slice(0, log.marks[id - log.firstSeq]) });
  if (log.final && log.final.id >= from) out.push(log.final);
  return out;
}

/** A stream this process serves. */
export interface StreamConnection {
  /** The peer has gone (or is going). */
  closed(): boolean;
  /** The task's events changed; `null` when the task no longer exists. */
  update(log: EventLog | null): void;
  /** Stop at once: another connection took the stream over, or this process is draining. */
  end(why: 'takeover' | 'drain'): void;
}
