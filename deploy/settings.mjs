/**
 * A variable source for serverless.yml, `${settings:NAME}`: the values the stage's settings imply
 * that YAML cannot work out itself. The functions check the settings fully when they start
 * (lib/config/); this checks what packaging needs, so that a mistake stops the package, not the
 * first request.
 *
 *   ${settings:wechatApps}           WECHAT_APPS: custom.wechatApps (a JSON string, or a YAML list) as JSON
 *   ${settings:readAppSecrets.KIND}  the statement that lets a role read the AppSecrets of the apps of
 *                                    KIND (miniprogram, officialaccount), each app's secretParam
 *   ${settings:corsOrigins}          CORS_ORIGINS: the stage's corsOrigins, comma-separated
 */

const PARAMETER_NAME = /^\/[A-Za-z0-9_.\-/]{1,1010}$/;

function fail(message) {
  throw new Error(`settings: ${message}`);
}

/** The apps as a list of objects, from a JSON string or a list; empty when unset. */
function appsOf(value) {
  if (value === undefined || value === null || value === '') return [];
  let apps = value;
  if (typeof value === 'string') {
    try {
      apps = JSON.parse(value);
    } catch {
      fail(
        'wechatApps (WECHAT_APPS) is not valid JSON: it must be a list like [{"appId": "wx...", "kind": "officialaccount", "secretParam": "/..."}]',
      );
    }
  }
  if (!Array.isArray(apps) || apps.length === 0) fail('wechatApps (WECHAT_APPS) must be a list of at least one app');
  apps.forEach((app, i) => {
    if (typeof app !== 'object' || app === null || Array.isArray(app)) fail(`wechatApps app ${i + 1} is not an object`);
    if (app.secretParam !== undefined && (typeof app.secretParam !== 'string' || !PARAMETER_NAME.test(app.secretParam))) {
      fail(`wechatApps app ${i + 1}: secretParam must be the name of an SSM parameter, starting with "/"`);
    }
    if ('secret' in app || 'appSecret' in app)
      fail(`wechatApps app ${i + 1}: an AppSecret never goes here; store it in SSM and name the parameter in secretParam`);
  });
  return apps;
}

async function resolve(name, resolveVariable) {
  switch (name) {
    case 'wechatApps': {
      const apps = appsOf(await resolveVariable('self:custom.wechatApps'));
      return apps.length === 0 ? '' : JSON.stringify(apps);
    }
    case 'readAppSecrets.miniprogram':
    case 'readAppSecrets.officialaccount': {
      // The AppSecrets of the apps of one kind: a mini-program's login needs the mini-programs',
      // an official account's login and the JS-SDK the official accounts'. None of another kind.
      const kind = name.slice('readAppSecrets.'.length);
      const apps = appsOf(await resolveVariable('self:custom.wechatApps'));
      const arns = (list) =>
        [...new Set(list.map((app) => app.secretParam).filter(Boolean))].map((parameter) => ({
          'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${parameter}`,
        }));
      const own = arns(apps.filter((app) => app.kind === kind));
      if (own.length > 0) return { Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: own };
      const every = arns(apps);
      // IAM refuses a statement without resources. Only the local stack, never deployed, reads the
      // AppSecrets from its own settings instead.
      if (every.length === 0 && (await resolveVariable('sls:stage')) !== 'local') {
        fail(
          'no app of wechatApps (WECHAT_APPS) names a secretParam: the login and JS-SDK functions need the AppSecret of at least one app',
        );
      }
      // No app of this kind: the function serves none and reads no AppSecret. A statement is still
      // needed where the role lists one (a list item cannot be left out): it denies every AppSecret.
      return { Effect: 'Deny', Action: ['ssm:GetParameter'], Resource: every };
    }
    case 'corsOrigins': {
      // A list in serverless.yml; a comma-separated string from `--param "corsOrigins=..."`.
      const value = (await resolveVariable('param:corsOrigins')) ?? [];
      const origins =
        typeof value === 'string'
          ? value
              .split(',')
              .map((origin) => origin.trim())
              .filter(Boolean)
          : value;
      if (!Array.isArray(origins) || !origins.every((origin) => typeof origin === 'string' && origin !== '' && !origin.includes(','))) {
        fail('corsOrigins must be a list of origins');
      }
      return origins.join(',');
    }
    default:
      return fail(`unknown setting "${name}" (wechatApps, readAppSecrets.miniprogram, readAppSecrets.officialaccount, corsOrigins)`);
  }
}

export default class SettingsPlugin {
  constructor() {
    this.configurationVariablesSources = {
      settings: {
        async resolve({ address, resolveVariable }) {
          return { value: await resolve(address, resolveVariable) };
        },
      },
    };
  }
}
