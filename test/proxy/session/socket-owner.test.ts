import { Socket } from 'node:net';
import { expect } from 'chai';
import { SocketOwner } from '../../../proxy/src/session/socket-owner.js';

describe('socket listeners shared by every connection', () => {
  it('one listener serves many sockets, each reaching its own owner', () => {
    const kind = new SocketOwner<{ name: string; got: string[] }>('test');
    const onData = kind.listener((owner, chunk: Buffer) => owner.got.push(`${owner.name}:${chunk}`));
    const [a, b] = [new Socket(), new Socket()];
    const owners = [
      { name: 'a', got: [] as string[] },
      { name: 'b', got: [] as string[] },
    ];
    kind.own(a, owners[0]!);
    kind.own(b, owners[1]!);
    a.on('data', onData);
    b.on('data', onData);
    a.emit('data', Buffer.from('1'));
    b.emit('data', Buffer.from('2'));
    expect(owners.map((o) => o.got)).to.deep.equal([['a:1'], ['b:2']]);
  });

  it('a socket without an owner of that kind is left alone', () => {
    const kind = new SocketOwner<{ calls: number }>('test');
    const other = new SocketOwner<{ calls: number }>('other');
    const owner = { calls: 0 };
    const onDrain = kind.listener((o) => o.calls++);
    const socket = new Socket();
    other.own(socket, owner);
    socket.on('drain', onDrain);
    socket.emit('drain');
    expect(owner.calls).to.equal(0);
  });
});
