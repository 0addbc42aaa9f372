import { freePort } from '../../dev/emulator/http-server';

/** The local stacks (`npm start`) the tests start: their ports, and their process groups, seen and stopped by group id. */

/** The variables that set the local stack's listening ports. */
const LOCAL_STACK_PORTS = ['PORT', 'WECHATPAY_SIM_PORT', 'WECHATPAY_SIM_TLS_PORT', 'DYNAMODB_PORT', 'DEMO_PORT', 'EVENTS_PORT'];

/** A free port for every listener of the local stack, by the variable that sets it: never a fixed port another run may hold. */
export async function localStackPorts(): Promise<Record<string, string>> {
  const ports: Record<string, string> = {};
  for (const name of LOCAL_STACK_PORTS) ports[name] = String(await freePort());
  return ports;
}

/** True while any process of the group is alive. */
export function groupAlive(group: number): boolean {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
}

export function killGroup(group: number): void {
  try {
    process.kill(-group, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
