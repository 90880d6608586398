// The manager's console: reads Till's own JSON API on this listener, with the session cookie the login set.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { today: null, date: null, repair: null };

async function api(method, path, body) {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = { text }; }
  return { status: response.status, json };
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function fill(table, items, render) {
  const body = $(table + " tbody");
  body.replaceChildren();
  for (const item of items) render(body.insertRow(), item);
}

async function start() {
  const session = await api("GET", "/api/v1/session");
  if (session.status !== 200) {
    $("#login-section").hidden = false;
    $("#console").hidden = true;
    return;
  }
  $("#login-section").hidden = true;
  $("#console").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = session.json.terminal;
  $("#facility").textContent = session.json.license;
  state.today = session.json.today;
  state.date = state.date || state.today;
  $("#day-date").value = state.date;
  await Promise.all([refresh(), loadDay()]);
  setInterval(refresh, 2000);
}

async function refresh() {
  const [reporting, sales] = await Promise.all([api("GET", "/api/v1/reporting"), api("GET", "/api/v1/sales")]);
  if (reporting.status === 200) {
    const r = reporting.json;
    $("#owed-summary").textContent =
      `${r.pending} sale(s) not yet in Metrc; ${r.journal.pending} write(s) owed; ${r.returns.pending} return(s) owed. ` +
      (r.metrc.reachable === false ? "Metrc is not answering." : "");
    $("#alerts").replaceChildren(...r.alerts.map((a) => { const li = document.createElement("li"); li.textContent = a.message; return li; }));
    fill("#in-doubt", r.journal.inDoubt, (row, w) => { cell(row, w.kind); cell(row, w.subject); cell(row, `${w.ageSeconds} s`); cell(row, w.lastError); });
    fill("#refused", r.journal.refused, (row, w) => { cell(row, w.kind); cell(row, w.subject); cell(row, (w.messages || []).join("; "), "error"); });
  }
  if (sales.status === 200) {
    const s = sales.json;
    $("#sales-date").textContent = s.date;
    $("#sales-totals").textContent = `${s.count} sale(s): ${s.grossAmount} gross, ${s.returnedAmount} returned, ${s.totalAmount} net.`;
    fill("#sales", s.sales.slice().reverse(), (row, sale) => {
      row.dataset.receipt = sale.receiptNumber;
      cell(row, sale.receiptNumber);
      cell(row, sale.salesDateTime.slice(11, 19));
      cell(row, sale.customerType);
      cell(row, sale.totalAmount, "amount");
      cell(row, sale.status, "status status-" + sale.status);
      cell(row, sale.metrcReceiptId);
    });
  }
}

async function loadDay() {
  state.date = $("#day-date").value || state.today;
  $("#report-link").href = `/api/v1/days/${state.date}/report?format=html`;
  const day = await api("GET", `/api/v1/days/${state.date}`);
  if (day.status !== 200) {
    $("#day-summary").textContent = day.json && day.json.error ? day.json.error.message : `Could not load the day (${day.status}).`;
    return;
  }
  const d = day.json;
  $("#day-summary").textContent = Object.entries(d.summary).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s.replaceAll("_", " ")}`).join(", ")
    + ` · the day is ${d.close.status}` + (d.amendedAfterClose.length ? `, amended after close by ${d.amendedAfterClose.length} return(s)` : "");
  $("#day-summary").dataset.close = d.close.status;
  const totals = [["Receipts", d.till.receipts, d.metrc.receipts], ["Amount", d.till.amount, d.metrc.amount],
                  ["Returned", d.till.returned, d.metrc.returned], ["Voided / archived", d.till.voided, d.metrc.voided]];
  for (const type of new Set([...Object.keys(d.till.byCustomerType), ...Object.keys(d.metrc.byCustomerType)])) {
    totals.push([type, (d.till.byCustomerType[type] || {}).amount || 0, (d.metrc.byCustomerType[type] || {}).amount || 0]);
  }
  for (const [kind, amount] of Object.entries(d.till.taxes || {})) totals.push([kind, amount, "–"]);
  fill("#day-totals", totals, (row, t) => { cell(row, t[0]); cell(row, t[1], "amount"); cell(row, t[2], "amount"); });
  fill("#day-receipts", d.receipts, (row, r) => {
    row.dataset.standing = r.standing;
    row.dataset.receipt = r.receiptNumber || "";
    cell(row, r.standing.replaceAll("_", " "), "standing standing-" + r.standing);
    cell(row, r.receiptNumber);
    cell(row, r.tillAmount, "amount");
    cell(row, r.metrcAmount, "amount");
    cell(row, r.differences.join("; "));
  });
}

async function repair(dryRun) {
  const result = await api("POST", `/api/v1/days/${state.date}/repair`, dryRun ? { dryRun: true } : undefined);
  const box = $("#repair-result");
  if (result.status !== 200) { box.textContent = result.json.error.message; return; }
  const actions = result.json.actions;
  box.textContent = (dryRun ? "Would send:\n" : "Sent:\n") +
    (actions.length ? actions.map((a) => `${a.kind} ${a.receiptNumber}: ${a.reason}`).join("\n") : "nothing: Metrc holds Till's record.");
  box.dataset.actions = String(actions.length);
  $("#repair-send").hidden = !(dryRun && actions.length);
  if (!dryRun) setTimeout(loadDay, 1500);
}

async function closeDay() {
  const result = await api("POST", `/api/v1/days/${state.date}/close`);
  const box = $("#close-result");
  if (result.status === 409) {
    box.textContent = "The day cannot close yet:\n" + result.json.error.details.blockers;
    box.dataset.status = "blocked";
  } else if (result.status === 200 || result.status === 202) {
    const c = result.json;
    box.textContent = c.status === "closed" ? `Closed: ${c.receipts} receipt(s) finalized in Metrc.`
      : `Closing: ${c.finalized} of ${c.receipts} receipt(s) finalized in Metrc…`;
    box.dataset.status = c.status;
    if (c.status !== "closed") setTimeout(closeDay, 1000); else loadDay();
  } else {
    box.textContent = result.json && result.json.error ? result.json.error.message : `Failed (${result.status}).`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const login = await api("POST", "/login", { token: $("#login-token").value });
    if (login.status === 200) { $("#login-error").textContent = ""; start(); }
    else $("#login-error").textContent = login.json && login.json.error ? login.json.error.message : "Login failed.";
  });
  $("#logout").addEventListener("click", async () => { await api("POST", "/logout"); location.reload(); });
  $("#day-form").addEventListener("submit", (event) => { event.preventDefault(); loadDay(); });
  $("#repair-dry").addEventListener("click", () => repair(true));
  $("#repair-send").addEventListener("click", () => repair(false));
  $("#close-day").addEventListener("click", closeDay);
  start();
});
