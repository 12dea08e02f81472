import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Access, AuthenticatedWebSocketApi, ChannelRule, TokenLocation, WebSocketAuth } from 'cdk-authenticated-websocket-api';
import { Construct } from 'constructs';

/**
 * A chat service: clients connect with a token signed by a shared secret, talk in rooms
 * (`rooms/<name>`), receive their private feed (`users/<their id>`) and may still broadcast to everyone.
 */
export class ChatStack extends Stack {
  public readonly chat: AuthenticatedWebSocketApi;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);

    const secret = new secretsmanager.Secret(this, 'JwtSecret', {
      description: 'Signs the tokens chat clients connect with',
    });
    this.chat = new AuthenticatedWebSocketApi(this, 'Chat', {
      // Browsers cannot set headers on a WebSocket: the web page (web/index.html) offers its token as a subprotocol.
      auth: WebSocketAuth.hmacSecret(secret, { tokenLocation: TokenLocation.subprotocol() }),
      channels: [
        // Rooms: every signed-in user may join and talk; members see who is there, and a client
        // that reconnects gets the last 100 messages it missed.
        ChannelRule.pattern('rooms/*', { presence: true, historySize: 100 }),
        // A user's private feed: only its owner subscribes; only backends publish (grantSend).
        ChannelRule.pattern('users/${userId}', { publish: Access.none(), historySize: 100 }),
      ],
    });

    new CfnOutput(this, 'Url', { value: this.chat.url });
    new CfnOutput(this, 'CallbackUrl', { value: this.chat.callbackUrl });
    new CfnOutput(this, 'JwtSecretArn', { value: secret.secretArn });
  }
}
