// strongroom console: the one script. It follows a running job on its page by polling
// the job's progress URL (same origin, session cookie) and reloads the page when the job
// ends, so the result, the point and the events show. Pages work without it.
"use strict";

(function () {
  const live = document.getElementById("live");
  if (!live || live.dataset.terminal === "yes") {
    return;
  }
  const url = live.dataset.progressUrl;
  const show = (id, text) => {
    const element = document.getElementById(id);
    if (element) {
      element.textContent = text;
    }
  };
  const poll = async () => {
    let job;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) {
        throw new Error("status " + response.status);
      }
      job = await response.json();
    } catch (error) {
      show("job-progress", "Live progress paused (" + error.message + "); reload to retry.");
      return;
    }
    const state = document.getElementById("job-state");
    if (state) {
      state.textContent = job.state;
      state.className = "state-" + job.state.toLowerCase();
    }
    show("job-attempt", job.attempt + "/" + job.max_attempts);
    show("job-updated", job.updated_at);
    show(
      "job-progress",
      Object.entries(job.progress).map(([key, value]) => key + ": " + value).join(" · ")
    );
    show("job-error", job.error || "");
    if (job.terminal) {
      window.location.reload();
      return;
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 1000);
})();
