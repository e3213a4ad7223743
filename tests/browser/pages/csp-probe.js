// Loaded by csp-probe.html: shows that the test server's CSP lets same-origin scripts run and
// stops inline scripts and eval, as the real server's policy does.

document.getElementById('external').textContent = 'external script ran';
let verdict;
try {
  verdict = (0, eval)('"eval ran"');
} catch (error) {
  verdict = `eval blocked (${error.name})`;
}
document.getElementById('eval').textContent = verdict;
