// Exposes dropbox/static/js/postern-crypto.js as window.postern for tests that drive it with
// page.evaluate (Playwright) or execute_script (Marionette); #status says "ready" once loaded.

import * as postern from '../static/js/postern-crypto.js';

window.postern = postern;
document.getElementById('status').textContent = 'ready';
