// End-to-end tests of rich results (issue 18) with the official MCP
// TypeScript SDK client over stdio, a real kiln serve and a real jail:
// files a run creates come back as resource_link items that resources/read
// serves, matplotlib figures as image items, pandas output as text. The
// jail's Python needs Debian's numpy, pandas and matplotlib (./setup.sh
// installs them); without them these tests fail, never skip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { kilnBin, makeStateDir, removeStateDir, serverEnv } from './lib/kiln.mjs';

const KILN = kilnBin();
const stateDir = makeStateDir();
let client;

const text = (r) => r.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const items = (r, type) => r.content.filter((c) => c.type === type);

// The data stack is what the jail sees through the host's /usr.
function requireDataStack() {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import numpy, pandas, matplotlib'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `numpy, pandas and matplotlib are missing for /usr/bin/python3: run ./setup.sh ` +
    `(without KILN_SKIP_DATA_STACK=1) or apt-get install python3-numpy python3-pandas python3-matplotlib\n${r.stderr}`);
}

// Width and height from a PNG's IHDR chunk, after checking the signature.
function pngSize(bytes) {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(bytes.subarray(0, 8).equals(signature), 'the image is a PNG');
  assert.equal(bytes.toString('latin1', 12, 16), 'IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

async function runPython(code) {
  const r = await client.callTool({ name: 'run_code', arguments: { language: 'python', code } });
  assert.equal(r.isError, false, text(r));
  return r;
}

before(async () => {
  requireDataStack();
  const transport = new StdioClientTransport({
    command: KILN,
    args: ['--set', `server.state_dir=${stateDir}`, '--set', 'server.log_level=warn', 'serve'],
    env: serverEnv(),
    stderr: 'pipe',
  });
  client = new Client({ name: 'e2e-rich', version: '1.0.0' });
  await client.connect(transport);
});

after(async () => {
  if (client) await client.close();
  removeStateDir(stateDir);
});

test('a file the run writes comes back as a resource_link that resources/read serves', async () => {
  const r = await runPython("import pandas as pd\n" +
    "df = pd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [4.5, 19.0]})\n" +
    "df.to_csv('out.csv', index=False)\n");
  const links = items(r, 'resource_link');
  assert.equal(links.length, 1, JSON.stringify(r.content));
  assert.equal(links[0].uri, 'kiln://workspace/out.csv');
  assert.equal(links[0].name, 'out.csv');
  assert.equal(links[0].mimeType, 'text/csv');
  const csv = 'city,temp\nOslo,4.5\nLima,19.0\n';
  assert.equal(links[0].size, csv.length);
  assert.deepEqual(r.structuredContent.files,
    [{ path: 'out.csv', uri: 'kiln://workspace/out.csv', mimeType: 'text/csv', size: csv.length, change: 'created' }]);
  const read = await client.readResource({ uri: links[0].uri });
  assert.deepEqual(read.contents, [{ uri: 'kiln://workspace/out.csv', mimeType: 'text/csv', text: csv }]);

  // Unchanged by the next run: not linked again; changed: linked as changed.
  const again = await runPython("open('out.csv', 'a').write('Rome,12.0\\n')\nopen('note.txt', 'w').write('n')\n");
  assert.deepEqual(again.structuredContent.files.map((f) => [f.path, f.change]),
    [['note.txt', 'created'], ['out.csv', 'changed']]);
  const quiet = await runPython("print(open('out.csv').read().count('\\n'))\n");
  assert.equal(items(quiet, 'resource_link').length, 0, 'a run that changes nothing links nothing');
});

test('a binary file comes back from resources/read as a blob equal to what was written', async () => {
  const r = await runPython("open('blob.bin', 'wb').write(bytes(range(256)) * 3)\n");
  const link = items(r, 'resource_link').find((l) => l.name === 'blob.bin');
  assert.ok(link, JSON.stringify(r.content));
  assert.equal(link.size, 768);
  const read = await client.readResource({ uri: link.uri });
  assert.equal(read.contents.length, 1);
  assert.equal(read.contents[0].text, undefined);
  const expected = Buffer.concat([0, 1, 2].map(() => Buffer.from([...Array(256).keys()])));
  assert.ok(Buffer.from(read.contents[0].blob, 'base64').equals(expected));
});

test('resources/read refuses paths that leave the workspace, and names what is missing', async () => {
  await runPython("import os\nos.symlink('/etc/hostname', 'escape')\nos.symlink('../../etc/passwd', 'up')\n");
  for (const [uri, why] of [['kiln://workspace/../etc/passwd', "contains '..'"],
    ['kiln://workspace/%2e%2e/etc/passwd', "contains '..'"],
    ['kiln://workspace/escape', 'outside the workspace'],
    ['kiln://workspace/up', 'outside the workspace']]) {
    await assert.rejects(client.readResource({ uri }), (e) => {
      assert.equal(e.code, -32602, `${uri}: ${e.message}`);
      assert.ok(e.message.includes(why), `${uri}: ${e.message}`);
      return true;
    });
  }
  await assert.rejects(client.readResource({ uri: 'kiln://workspace/none.csv' }), (e) => {
    assert.equal(e.code, -32002);
    assert.match(e.message, /none\.csv.*does not exist/);
    return true;
  });
});

test('the workspace is a resource template', async () => {
  const { resourceTemplates } = await client.listResourceTemplates();
  const t = resourceTemplates.find((x) => x.uriTemplate === 'kiln://workspace/{+path}');
  assert.ok(t, JSON.stringify(resourceTemplates));
  assert.match(t.description, /at most 16MiB/);
});

test('a matplotlib figure comes back as a PNG image of the figure\'s pixel size', async () => {
  const r = await runPython("import matplotlib.pyplot as plt\n" +
    "fig = plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 3, 2])\nplt.show()\nplt.close(fig)\n" +
    "plt.figure(figsize=(2, 5), dpi=50)\nplt.bar(['a', 'b'], [1, 2])\n");
  const images = items(r, 'image');
  assert.equal(images.length, 2, text(r));
  assert.equal(r.structuredContent.images, 2);
  assert.deepEqual(images.map((i) => i.mimeType), ['image/png', 'image/png']);
  assert.deepEqual(pngSize(Buffer.from(images[0].data, 'base64')), { width: 400, height: 300 }, 'shown, then closed');
  assert.deepEqual(pngSize(Buffer.from(images[1].data, 'base64')), { width: 100, height: 250 }, 'left open at exit');
  assert.doesNotMatch(r.structuredContent.stderr, /non-GUI backend|Fontconfig|matplotlibrc/, 'no warnings from the plumbing');
  assert.equal(items(r, 'resource_link').length, 0, 'the figures are not workspace files');
  const ls = await client.callTool({ name: 'list_files', arguments: { recursive: true } });
  assert.ok(!ls.structuredContent.entries.some((e) => e.path.startsWith('.kiln')), 'the figure directory is gone');
});

test('figures past the limit are dropped with a note, and a fake one too', async () => {
  const r = await runPython("import os\nimport matplotlib.pyplot as plt\n" +
    "for i in range(10):\n    plt.figure(figsize=(1, 1), dpi=20)\n" +
    "open(os.environ['KILN_FIGURE_DIR'] + '/a-fake.png', 'w').write('<svg/>')\n");
  assert.equal(items(r, 'image').length, 8, text(r));
  assert.match(text(r), /note: 1 figure that is not a PNG image dropped: a-fake\.png/);
  assert.match(text(r), /note: 2 more figures dropped: at most 8 images per result \(workspace\.max_images\)/);
});

test('a printed DataFrame reads as a text table', async () => {
  const r = await runPython("import pandas as pd\n" +
    "df = pd.DataFrame({'city': ['Oslo', 'Lima', 'Rome'], 'temp': [4.5, 19.0, 12.25]})\nprint(df)\n" +
    "print(df.describe().loc[['count', 'mean']])\n");
  assert.equal(r.structuredContent.stdout,
    '   city   temp\n0  Oslo   4.50\n1  Lima  19.00\n2  Rome  12.25\n' +
    '            temp\ncount   3.000000\nmean   11.916667\n');
  assert.match(text(r), /--- stdout ---\n {3}city {3}temp\n0 {2}Oslo/);
});
