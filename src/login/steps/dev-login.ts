/**
 * The development login (`login.dev`): a page listing the configured users, and its form,
 * which logs in as the chosen one without a password. Its identity is `dev:<email>`.
 */
import type { GatewayConfig } from '../../config/schema.js';
import { namespacedGroups } from '../../policy/groups.js';
import type { CsrfTokens } from '../../web/csrf.js';
import { renderErrorPage } from '../../web/error-page.js';
import type { FormCheck } from '../../web/form-check.js';
import { sendPage } from '../../web/send-page.js';
import { renderDevLogin } from '../views/login-pages.js';
import type { LoginCompletion } from './complete-login.js';
import { InteractionMismatch, type StepHandler } from './interaction.js';

export type DevUser = NonNullable<GatewayConfig['login']['dev']>['users'][number];

export interface DevLoginDependencies {
  /** Absent when the development login is off (or not allowed on this listener). */
  devUsers: DevUser[] | undefined;
  csrf: Pick<CsrfTokens, 'issue'>;
  /** The login steps' form check (CSRF token per interaction). */
  checkForm: FormCheck;
  completeLogin: LoginCompletion;
}

export interface DevLoginStep {
  /** The page, or `undefined` when the dev login is off. */
  page: StepHandler | undefined;
  /** The form post: the chosen user, logged in. */
  submit: StepHandler;
}

export function devLoginStep(deps: DevLoginDependencies): DevLoginStep {
  const { devUsers, csrf } = deps;
  const page: StepHandler | undefined = devUsers
    ? async (_req, res, interaction) =>
        sendPage(
          res,
          200,
          renderDevLogin(
            interaction.uid,
            await csrf.issue(interaction.uid),
            devUsers.map((user) => user.email),
          ),
        )
    : undefined;

  const submit: StepHandler = async (req, res, interaction) => {
    if (!devUsers) throw new InteractionMismatch();
    const post = { tokenKey: interaction.uid, details: { interaction: interaction.uid } };
    if (!(await deps.checkForm(req, res, post))) return;
    const body = req.body as Record<string, unknown> | undefined;
    const email = String(body?.email ?? '').toLowerCase();
    const user = devUsers.find((candidate) => candidate.email === email);
    if (!user) {
      return sendPage(
        res,
        400,
        renderErrorPage({ title: 'Unknown user', error: 'invalid_request' }),
      );
    }
    return deps.completeLogin(req, res, interaction, {
      identity: {
        sub: `dev:${email}`,
        provider: 'dev',
        email,
        emailVerified: true,
        name: user.name,
        groups: namespacedGroups('dev', user.groups),
      },
    });
  };

  return { page, submit };
}
