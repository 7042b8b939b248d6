// Start a PLC directory (in memory) and the reference Bluesky PDS in one Node process, both on
// 127.0.0.1, the way @atproto/dev-env does (packages/dev-env/src/plc.ts and pds.ts in
// bluesky-social/atproto): `plc.Database.mock()` for the directory, `PDS.fromEnv` for the PDS.
//
// Run by tests/servers/pds.py with the Node 22 that .ci/install-pds installs, from the install's
// app folder (so that its node_modules resolve):
//
//   SOLIDARITY_PLC_PORT=... PDS_PORT=... PDS_DID_PLC_URL=http://127.0.0.1:... PDS_...=... \
//     node tests/servers/pds.mjs
//
// Prints one JSON line, {"pds": URL, "plc": URL}, when both answer; stops cleanly on SIGTERM.
import http from 'node:http'
import { createRequire } from 'node:module'
import path from 'node:path'

// Both servers call app.listen(port), which binds every interface: bind 127.0.0.1 only.
const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1')
  } else if (args[0] && typeof args[0] === 'object' && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' }
  }
  return listen.apply(this, args)
}

// Resolve the packages from the install (the current folder), not from this file's folder.
const require = createRequire(path.join(process.cwd(), 'package.json'))
const { PlcServer, Database } = require('@did-plc/server')
const { PDS, readEnv } = await import(require.resolve('@atproto/pds'))

const plcPort = Number(process.env.SOLIDARITY_PLC_PORT)
if (!plcPort || !process.env.PDS_PORT) {
  console.error('pds.mjs: SOLIDARITY_PLC_PORT and PDS_PORT are needed')
  process.exit(2)
}

const plc = PlcServer.create({ db: Database.mock(), port: plcPort })
await plc.start()

const pds = await PDS.fromEnv(readEnv())
await pds.start()

let stopping = false
const stop = async (signal) => {
  if (stopping) return
  stopping = true
  try {
    await pds.destroy()
    await plc.destroy()
  } catch (err) {
    console.error(`pds.mjs: error while stopping on ${signal}:`, err)
    process.exit(1)
  }
  process.exit(0)
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

console.log(
  JSON.stringify({
    pds: `http://127.0.0.1:${process.env.PDS_PORT}`,
    plc: `http://127.0.0.1:${plcPort}`,
    version: pds.ctx.cfg.service.version,
  }),
)
