// The import page: asks for the API key, creates an import, puts the file to
// its presigned URL, follows the job until it is done, and lists past
// imports. Plain JavaScript against the API of functions/api; nothing is
// loaded from another host.
"use strict";

const KEY_STORAGE = "loyalty-import.api-key";
const POLL_MS = 1500;
const FINAL = ["completed", "completed_with_errors", "rejected", "discarded", "expired"];
const STATUS_TEXT = {
  awaiting_upload: "Waiting for the file",
  waiting: "Waiting for an earlier file of the same program",
  splitting: "Reading the file",
  reviewing: "Reading the whole file for review (nothing is applied yet)",
  ready_for_review: "Ready for your review",
  processing: "Applying the rows",
  finalizing: "Writing the processed file",
  completed: "Completed",
  completed_with_errors: "Completed, some rows not applied",
  rejected: "Rejected",
  discarded: "Discarded",
  expired: "Review expired",
};
const KIND_TEXT = {
  points: "Points",
  points_with_expiry: "Points with expiry",
  smile: "Smile.io",
  cardcode: "Membership cards",
  tierchange: "Tier changes",
};
// What a review counts once per file, and which of them are new: a points
// file's customers (new: no wallet yet), a membership file's cards by code
// (new: no card of that code yet; for a tier change, a card it cannot find
// unless an earlier file creates it).
const REVIEW_NAMES = {
  points: ["Customers", "New customers"],
  cardcode: ["Cards", "New cards"],
  tierchange: ["Cards", "Cards not found yet"],
};

const $ = (id) => document.getElementById(id);

const state = {
  jobId: null,
  timer: null,
  // Rows decided, as first seen while the rows were being applied: the rate
  // the estimate of time left is drawn from.
  since: null,
  historyCursor: null,
};

// --- The key --------------------------------------------------------------

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

function showWorkspace() {
  const key = apiKey();
  $("key-section").hidden = Boolean(key);
  $("workspace").hidden = !key;
  if (key) {
    $("tenant-name").textContent = key.split(".")[0];
  }
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  stopPolling();
  showWorkspace();
  $("api-key").value = "";
  $("api-key").focus();
}

// --- Calls to the API -----------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The error's message, from either shape the API answers with:
// {"error": "message"} or {"error": {"code": ..., "message": ...}}.
function errorOf(status, body) {
  if (status === 401) {
    return new ApiError(status, "unauthorized", "This API key was not accepted.");
  }
  const error = body && body.error;
  if (error && typeof error === "object") {
    return new ApiError(status, error.code || "", error.message || `HTTP ${status}`);
  }
  if (typeof error === "string") {
    return new ApiError(status, "", error);
  }
  return new ApiError(status, "", `The request failed (HTTP ${status}).`);
}

async function call(method, path, body) {
  const headers = { authorization: `Bearer ${apiKey()}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network", "The API could not be reached: check your connection and try again.");
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!response.ok) {
    const error = errorOf(response.status, json);
    // A tenant past its share of the API: when to call again.
    error.retryAfter = Number(response.headers.get("retry-after")) || 0;
    if (error.status === 401) {
      forgetKey();
    }
    throw error;
  }
  return json;
}

// --- Messages -------------------------------------------------------------

function showAlert(message) {
  const alert = $("alert");
  alert.textContent = message;
  alert.hidden = false;
  alert.focus();
}

function clearAlert() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

function fail(error) {
  showAlert(error.message || String(error));
}

// --- Templates ------------------------------------------------------------

function chosenKind() {
  const [kind, mode] = $("kind").value.split(":");
  return { kind, mode };
}

async function downloadTemplate() {
  clearAlert();
  const { kind } = chosenKind();
  let response;
  try {
    response = await fetch(`templates/${encodeURIComponent(kind)}`, {
      headers: { authorization: `Bearer ${apiKey()}` },
      cache: "no-store",
    });
  } catch (e) {
    return fail(new ApiError(0, "network", "The API could not be reached."));
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.status === 401) {
      forgetKey();
    }
    return fail(errorOf(response.status, body));
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `${kind}_template.csv`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// --- Upload ---------------------------------------------------------------

async function upload(event) {
  event.preventDefault();
  clearAlert();
  const file = $("file").files[0];
  const reason = $("reason").value.trim();
  if (!reason) {
    $("reason").focus();
    return showAlert("Type the reason for this import.");
  }
  if (!file) {
    $("file").focus();
    return showAlert("Choose the file to import.");
  }
  const { kind, mode } = chosenKind();
  const request = { kind, reason, filename: file.name, size_bytes: file.size };
  if (mode) {
    request.mode = mode;
  }
  if ($("review").checked) {
    request.review = true;
  }
  $("upload").disabled = true;
  try {
    const ticket = await call("POST", "imports", request);
    await put(ticket.upload, file);
    $("import-form").reset();
    openJob(ticket.job_id);
  } catch (e) {
    fail(e);
  } finally {
    $("upload").disabled = false;
    $("upload-status").hidden = true;
  }
}

// The file's bytes to the presigned URL, with the headers it was signed
// with (the browser sets the length itself).
function put(presigned, file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(presigned.method || "PUT", presigned.url);
    for (const [name, value] of Object.entries(presigned.headers || {})) {
      if (!["content-length", "host"].includes(name.toLowerCase())) {
        xhr.setRequestHeader(name, value);
      }
    }
    const bar = $("upload-progress");
    bar.value = 0;
    $("upload-percent").textContent = "0%";
    $("upload-status").hidden = false;
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        const percent = Math.floor((e.loaded * 100) / e.total);
        bar.value = percent;
        $("upload-percent").textContent = `${percent}%`;
      }
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        $("upload-percent").textContent = "100%";
        resolve();
      } else {
        reject(new ApiError(xhr.status, "upload", `The file could not be uploaded (HTTP ${xhr.status}); create the import again.`));
      }
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, "upload", "The file could not be uploaded: the storage could not be reached.")));
    xhr.send(file);
  });
}

// --- One job --------------------------------------------------------------

function openJob(jobId) {
  stopPolling();
  state.jobId = jobId;
  state.since = null;
  if (location.hash !== `#job=${encodeURIComponent(jobId)}`) {
    history.replaceState(null, "", `#job=${encodeURIComponent(jobId)}`);
  }
  $("job-section").hidden = false;
  $("job-title").textContent = `Import ${jobId}`;
  $("review-panel").hidden = true;
  $("result-panel").hidden = true;
  $("job-eta").textContent = "";
  $("job-title").focus();
  poll();
}

function stopPolling() {
  clearTimeout(state.timer);
  state.timer = null;
}

async function poll() {
  const jobId = state.jobId;
  let job;
  try {
    job = await call("GET", `imports/${encodeURIComponent(jobId)}`);
  } catch (e) {
    if (jobId !== state.jobId) {
      return;
    }
    if (e.code === "rate_limited") {
      // Watching goes on once the tenant may call again.
      state.timer = setTimeout(poll, Math.max(e.retryAfter, 1) * 1000);
      return;
    }
    fail(e);
    return;
  }
  if (jobId !== state.jobId) {
    return;
  }
  showJob(job);
  if (!FINAL.includes(job.status) && job.status !== "ready_for_review") {
    state.timer = setTimeout(poll, POLL_MS);
  } else {
    refreshHistory();
  }
}

function showJob(job) {
  $("job-section").dataset.status = job.status;
  $("job-status").textContent = STATUS_TEXT[job.status] || job.status;
  $("job-file").textContent = job.filename || "";
  $("job-kind").textContent = KIND_TEXT[job.kind] || job.kind || "";
  $("job-reason").textContent = job.reason || "";
  showProgress(job);
  showPreview(job.preview || []);
  showReview(job);
  showResult(job);
  if (job.status === "rejected" && job.rejection) {
    showAlert(`The file was rejected: ${job.rejection}`);
  }
}

function showProgress(job) {
  const progress = job.progress || {};
  const decided = progress.rows_decided || 0;
  const total = progress.rows_total;
  $("job-progress").value = progress.percent || 0;
  $("job-progress-text").textContent =
    total == null ? `${decided} rows decided` : `${decided} of ${total} rows (${progress.percent || 0}%)`;
  $("job-eta").textContent = estimate(job, decided, total);
}

// Time left at the rate observed since the rows began to be applied.
function estimate(job, decided, total) {
  if (FINAL.includes(job.status) || total == null || decided >= total) {
    state.since = null;
    return "";
  }
  const now = Date.now();
  if (!state.since) {
    state.since = { at: now, decided };
    return "Estimating the time left…";
  }
  const seconds = (now - state.since.at) / 1000;
  const rate = (decided - state.since.decided) / seconds;
  if (seconds < 2 || rate <= 0) {
    return "Estimating the time left…";
  }
  const left = Math.ceil((total - decided) / rate);
  return left < 60
    ? `About ${left} seconds left`
    : `About ${Math.ceil(left / 60)} minutes left`;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) {
    td.className = className;
  }
  row.appendChild(td);
  return td;
}

// The preview's column headers: a points file's columns, or for a
// membership file (rows of `cells`) the row's first cells.
function previewHeaders(cells) {
  const names = cells
    ? [["Row"], ["First cells of the row", 4], ["Result"]]
    : [["Row"], ["Customer"], ["Points"], ["Operation"], ["Expiry"], ["Result"]];
  const tr = $("preview").querySelector("thead tr");
  tr.replaceChildren();
  for (const [name, span] of names) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    if (span) {
      th.colSpan = span;
    }
    tr.appendChild(th);
  }
}

function showPreview(rows) {
  const body = $("preview").querySelector("tbody");
  body.replaceChildren();
  previewHeaders(rows.some((r) => Array.isArray(r.cells)));
  for (const r of rows.slice(0, 50)) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = r.row;
    tr.appendChild(th);
    if (Array.isArray(r.cells)) {
      cell(tr, r.cells.join(", ")).colSpan = 4;
    } else {
      cell(tr, r.identifier);
      cell(tr, r.amount);
      cell(tr, r.operation);
      cell(tr, r.expiry);
    }
    const result = r.error || r.result || "valid";
    const valid = result === "valid";
    cell(tr, valid ? "Valid" : result, valid ? "valid" : "invalid");
    body.appendChild(tr);
  }
  $("preview").hidden = rows.length === 0;
}

function facts(list, pairs) {
  list.replaceChildren();
  for (const [name, value] of pairs) {
    if (value === undefined || value === null) {
      continue;
    }
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = typeof value === "number" ? value.toLocaleString() : value;
    list.append(dt, dd);
  }
}

function showReview(job) {
  const review = job.review;
  const panel = $("review-panel");
  const wasHidden = panel.hidden;
  panel.hidden = !review || typeof review !== "object";
  if (panel.hidden) {
    return;
  }
  // A direction no row takes (every direction, in a membership file) has no line.
  const movement = (m) => (m && m.rows ? `${m.rows} rows, ${m.points} points` : null);
  const [named, fresh] = REVIEW_NAMES[job.kind] || REVIEW_NAMES.points;
  const tiers = (review.tiers || []).map((t) => `${t.tier_name}: ${t.rows}`);
  if (review.other_tier_rows) {
    tiers.push(`other tiers: ${review.other_tier_rows}`);
  }
  facts($("review-totals"), [
    ["Rows", review.rows],
    ["Valid rows", review.valid],
    ["Invalid rows", review.invalid],
    ["Rows with nothing to change", review.skipped || null],
    ["Credits", movement(review.credits)],
    ["Debits", movement(review.debits)],
    ["Balances set", review.set_balance_rows || null],
    [named, review.customers],
    [fresh, review.new_customers],
    ["Card codes to generate", review.codes_to_generate || null],
    ["Rows by tier", tiers.length ? tiers.join(", ") : null],
    ["Review open until", review.expires_at ? new Date(review.expires_at).toLocaleString() : null],
  ]);
  errorTable($("review-errors"), review.errors);
  const ready = job.status === "ready_for_review";
  $("start").hidden = !ready;
  $("discard").hidden = !ready;
  if (ready && wasHidden) {
    $("review-title").focus();
  }
}

// The rows not applied by error code (`{codes: [{code, count, examples}]}`)
// as a table with a header for each column and each row.
function errorTable(table, digest) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  const codes = (digest && Array.isArray(digest.codes)) ? digest.codes : [];
  for (const error of codes) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = error.code;
    tr.appendChild(th);
    cell(tr, error.count);
    const examples = cell(tr, "");
    for (const example of error.examples || []) {
      const line = document.createElement("div");
      line.textContent = example.message || `row ${example.row}`;
      examples.appendChild(line);
    }
    body.appendChild(tr);
  }
  table.hidden = body.children.length === 0;
}

function showResult(job) {
  const panel = $("result-panel");
  const done = FINAL.includes(job.status);
  const wasHidden = panel.hidden;
  panel.hidden = !done;
  if (!done) {
    return;
  }
  const counts = job.counts || {};
  facts($("result-counts"), [
    ["Rows", counts.rows],
    ["Applied", counts.applied],
    ["Not applied", counts.failed],
    ["Skipped", counts.skipped],
    ["Of which invalid", counts.invalid],
    ["Points credited", counts.credited],
    ["Points debited", counts.debited],
    ["Finished", job.finished_at ? new Date(job.finished_at).toLocaleString() : null],
  ]);
  errorTable($("result-errors"), job.errors);
  const reverts = $("result-reverts");
  reverts.hidden = !(job.reverts || job.reverted_by);
  reverts.textContent = job.reverts
    ? `This import reverts import ${job.reverts}.`
    : job.reverted_by ? `This import was reverted by import ${job.reverted_by}.` : "";
  $("revert-box").hidden = !job.can_revert;
  $("revert-confirm").hidden = true;
  const file = job.processed_file;
  const url = file && (typeof file === "string" ? file : file.url);
  $("result-download").hidden = !url;
  if (url) {
    $("processed-link").href = url;
  }
  if (wasHidden && job.status !== "rejected") {
    $("result-title").focus();
  }
}

async function decide(action) {
  clearAlert();
  $("start").disabled = true;
  $("discard").disabled = true;
  try {
    const job = await call("POST", `imports/${encodeURIComponent(state.jobId)}/${action}`);
    showJob(job);
    if (!FINAL.includes(job.status)) {
      state.since = null;
      stopPolling();
      state.timer = setTimeout(poll, POLL_MS);
    }
  } catch (e) {
    fail(e);
  } finally {
    $("start").disabled = false;
    $("discard").disabled = false;
  }
}

// Reverts an import, then follows its reversal.
async function revert(jobId) {
  clearAlert();
  $("revert-yes").disabled = true;
  try {
    const reversal = await call("POST", `imports/${encodeURIComponent(jobId)}/revert`);
    openJob(reversal.job_id);
  } catch (e) {
    fail(e);
  } finally {
    $("revert-yes").disabled = false;
  }
}

// --- History --------------------------------------------------------------

function when(value) {
  return value ? new Date(value).toLocaleString() : "";
}

async function loadHistory(more) {
  const error = $("history-error");
  error.hidden = true;
  const cursor = more && state.historyCursor ? `&cursor=${encodeURIComponent(state.historyCursor)}` : "";
  let page;
  try {
    page = await call("GET", `imports?limit=20${cursor}`);
  } catch (e) {
    if (e.status === 401) {
      throw e;
    }
    error.textContent = `The imports could not be listed: ${e.message}`;
    error.hidden = false;
    return;
  }
  const body = $("history").querySelector("tbody");
  if (!more) {
    body.replaceChildren();
  }
  for (const job of (page && page.imports) || []) {
    const tr = document.createElement("tr");
    tr.className = "open-job";
    const th = document.createElement("th");
    th.scope = "row";
    const link = document.createElement("a");
    link.href = `#job=${encodeURIComponent(job.job_id)}`;
    link.textContent = when(job.created_at) || job.job_id;
    th.appendChild(link);
    tr.appendChild(th);
    const counts = job.counts || {};
    cell(tr, STATUS_TEXT[job.status] || job.status);
    cell(tr, KIND_TEXT[job.kind] || job.kind);
    cell(tr, job.filename);
    cell(tr, job.reason);
    cell(tr, when(job.finished_at));
    cell(tr, counts.rows);
    cell(tr, counts.applied);
    cell(tr, counts.failed);
    const action = cell(tr, "");
    if (job.can_revert) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Revert…";
      button.setAttribute("aria-label", `Revert the import of ${job.filename}`);
      // Opens the import, whose panel asks to confirm.
      button.addEventListener("click", (e) => {
        e.stopPropagation();
        location.hash = link.getAttribute("href");
      });
      action.appendChild(button);
    } else if (job.reverted_by) {
      action.textContent = "Reverted";
    }
    tr.addEventListener("click", (e) => {
      if (e.target !== link) {
        location.hash = link.getAttribute("href");
      }
    });
    body.appendChild(tr);
  }
  state.historyCursor = page ? page.next_cursor : null;
  $("history-more").hidden = !state.historyCursor;
}

function refreshHistory() {
  loadHistory(false).catch(fail);
}

// --- Start ----------------------------------------------------------------

function jobInHash() {
  const match = /^#job=(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function followHash() {
  const jobId = jobInHash();
  if (apiKey() && jobId && jobId !== state.jobId) {
    openJob(jobId);
  }
}

async function useKey(event) {
  event.preventDefault();
  clearAlert();
  const key = $("api-key").value.trim();
  if (!key) {
    return showAlert("Type your API key.");
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  showWorkspace();
  try {
    // A key the API refuses is forgotten at once and said so.
    await loadHistory(false);
  } catch (e) {
    return fail(e);
  }
  $("api-key").value = "";
  followHash();
  if (!jobInHash()) {
    $("new-title").setAttribute("tabindex", "-1");
    $("new-title").focus();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("template").addEventListener("click", downloadTemplate);
  $("import-form").addEventListener("submit", upload);
  $("start").addEventListener("click", () => decide("start"));
  $("discard").addEventListener("click", () => decide("discard"));
  $("revert").addEventListener("click", () => {
    $("revert-confirm").hidden = false;
    $("revert-yes").focus();
  });
  $("revert-no").addEventListener("click", () => {
    $("revert-confirm").hidden = true;
    $("revert").focus();
  });
  $("revert-yes").addEventListener("click", () => revert(state.jobId));
  $("history-refresh").addEventListener("click", refreshHistory);
  $("history-more").addEventListener("click", () => loadHistory(true).catch(fail));
  window.addEventListener("hashchange", followHash);
  showWorkspace();
  if (apiKey()) {
    refreshHistory();
    followHash();
  }
});
