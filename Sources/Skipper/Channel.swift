/// The NOTIFY channels Skipper uses. Notifications are hints: every reader also polls.
public enum Channel {
    /// Payload: a queue name. Sent (debounced, after commit) when jobs were inserted into that queue; wakes runners.
    public static let jobs = "skipper_jobs"
    /// Payload: a job id. Sent when a RUNNING job's cancel is requested; its runner cancels the job's task.
    public static let cancel = "skipper_cancel"
    /// Payload: a job id. Sent when a job's progress or status changed; the API's SSE streams follow it.
    public static let events = "skipper_events"
}
