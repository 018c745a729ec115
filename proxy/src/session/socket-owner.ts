// Socket listeners without a closure per connection. A connection held for hours by tens of
// thousands of idle clients costs what it keeps, and a closure with its context is a few hundred
// bytes. Instead, the object that relays a connection is set on its sockets under a symbol, and
// one listener function made at load time finds it through the socket it is called on (Node calls
// a listener with `this` = the emitter).
import type { Socket } from 'node:net';

type Owned<T> = Socket & Record<symbol, T | undefined>;

/** A symbol under which sockets carry their owner, and listeners that call the owner's methods. */
export class SocketOwner<T extends object> {
  readonly #key: symbol;

  constructor(description: string) {
    this.#key = Symbol(description);
  }

  /** Makes `owner` what this kind's listeners on `socket` call. */
  own(socket: Socket, owner: T): void {
    (socket as Owned<T>)[this.#key] = owner;
  }

  /** One listener for every socket: calls `method` with the socket's owner and the event's argument. */
  listener<A = undefined>(method: (owner: T, arg: A) => void): (this: Socket, arg: A) => void {
    const key = this.#key;
    return function (this: Socket, arg: A): void {
      const owner = (this as Owned<T>)[key];
      if (owner !== undefined) method(owner, arg);
    };
  }
}
