import { createServer, type Server } from 'node:http';
import { listen, readBody, type Listening } from '../../dev/emulator/http-server';
import { TEST_MERCHANT } from '../../dev/emulator/test-merchant';
import { signFields, type Fields, type SignType } from '../../lib/wechatpay/sign';
import { buildXml, parseXml } from '../../lib/wechatpay/xml';

const { appId, mchId, apiKey } = TEST_MERCHANT;

export interface Received {
  path: string;
  raw: Buffer;
  fields: Fields;
}

export interface Reply {
  status?: number;
  body?: string | Buffer;
  /** Default text/xml. */
  contentType?: string;
  /** Hang up without answering. */
  hangUp?: boolean;
  delayMs?: number;
}

/** A scripted WeChat Pay on 127.0.0.1: each request takes the next reply from the script. */
export class ScriptedWechatPay {
  readonly received: Received[] = [];
  private script: Array<(request: Received) => Reply> = [];
  private timers = new Set<NodeJS.Timeout>();
  private server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const raw = body as Buffer;
      const request = { path: req.url ?? '', raw, fields: parseXml(raw) };
      this.received.push(request);
      const next = this.script.shift();
      const reply: Reply = next ? next(request) : { status: 599, body: 'script exhausted' };
      const send = () => {
        if (reply.hangUp) {
          req.socket.destroy();
          return;
        }
        res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'text/xml' });
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) {
        const timer = setTimeout(send, reply.delayMs);
        this.timers.add(timer);
      } else {
        send();
      }
    });
  });

  url = '';
  private listening?: Listening;

  async start(): Promise<void> {
    this.listening = await listen(this.server);
    this.url = this.listening.origin;
  }

  then(...replies: Array<Reply | ((request: Received) => Reply)>): this {
    for (const reply of replies) this.script.push(typeof reply === 'function' ? reply : () => reply);
    return this;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    await this.listening?.close();
  }
}

/** A signed WeChat Pay answer; like WeChat Pay, it is signed with the request's sign type but does not echo sign_type. */
export function answer(fields: Fields, signType: SignType = 'MD5', key: string = apiKey): Reply {
  const out: Fields = {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: appId,
    mch_id: mchId,
    nonce_str: 'Wb3PbM4tXUqKkcCH',
    result_code: 'SUCCESS',
    ...fields,
  };
  return { body: buildXml(signFields(out, key, signType, { declareSignType: false })) };
}

export function businessError(errCode: string, errCodeDes: string, signType: SignType = 'MD5'): Reply {
  return answer({ result_code: 'FAIL', err_code: errCode, err_code_des: errCodeDes }, signType);
}
