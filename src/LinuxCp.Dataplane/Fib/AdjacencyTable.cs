using LinuxCp.Dataplane.Tables;

namespace LinuxCp.Dataplane.Fib;

/// <summary>An adjacency: an egress phy port and a neighbour on it. A point-to-point port has
/// one (its peer), whatever the address.</summary>
public readonly record struct AdjacencyKey(ushort Port, bool V6, UInt128 Ip);

/// <summary>A phy port as Linux configured its mirror. Point-to-point ports (TUN mirrors) run no
/// ARP/ND: a next hop's adjacency is the MAC the workers saw it send from, or else the MAC of the
/// link's peer (the last sender), learned by the workers.</summary>
public readonly record struct PortState(bool Up, ushort Mtu, ulong Mac, bool PointToPoint = false, ulong PeerMac = 0);

/// <summary>The interned adjacency table: (port, neighbour) -> path id. Groups hold references
/// on the paths of their buckets; a path's rewrite (next-hop MAC, port MAC, MTU, or glean when
/// unresolved or the port is down) is recomputed when its neighbour or port changes and written
/// to the inactive slot of its entry, then flipped, so every route through it changes with one
/// store. Path ids are reused only after a grace period (deferred interner).</summary>
public sealed unsafe class AdjacencyTable
{
    private readonly NextHopTables _nh;
    private readonly Interner<AdjacencyKey> _ids = new(1, NextHopTables.MaxPaths, deferred: true);
    private PathSlot[] _written = new PathSlot[1024];
    private readonly Dictionary<AdjacencyKey, ulong> _neighbors = [];
    private readonly PortState[] _ports = new PortState[Interfaces.Max];
    private readonly HashSet<int> _dirty = [];

    public AdjacencyTable(NextHopTables nh) => _nh = nh;

    public int Count => _ids.Count;
    public int PendingFree => _ids.PendingCount;
    public long Refusals => _ids.Refusals;
    public int Capacity => _ids.Capacity;

    public PortState Port(ushort port) => _ports[port];

    public AdjacencyKey Key(int id) => _ids[id];

    /// <summary>Whether a path forwards now (resolved neighbour, port up).</summary>
    public bool Resolved(int id) => _written[id].Kind == PathKind.Forward;

    /// <summary>A reference on the path of an adjacency, creating it (both slots written: no
    /// worker can hold a new id). False when the path ids are used up.</summary>
    public bool TryAcquire(in AdjacencyKey key, out int id)
    {
        if (!_ids.TryAcquire(key, out id, out bool created))
            return false;
        if (created)
        {
            if (id >= _written.Length)
                Array.Resize(ref _written, Math.Max(_written.Length * 2, id + 1));
            PathSlot slot = Compute(key);
            PathEntry* e = _nh.Paths + id;
            e->Slot0 = slot;
            e->Slot1 = slot;
            Volatile.Write(ref e->Active, 0);
            _written[id] = slot;
        }
        return true;
    }

    public void AddRef(int id) => _ids.AddRef(id);

    public void Release(int id)
    {
        if (_ids.Release(id))
            _dirty.Remove(id);
    }

    /// <summary>Path ids released since the last call become reusable (after a grace period).</summary>
    public int Reclaim() => _ids.Reclaim();

    public void SetNeighbor(in AdjacencyKey key, ulong? mac)
    {
        if (mac is ulong m)
            _neighbors[key] = m;
        else
            _neighbors.Remove(key);
        int id = _ids.Find(key);
        if (id > 0)
            _dirty.Add(id);
    }

    public bool TryGetNeighbor(in AdjacencyKey key, out ulong mac) => _neighbors.TryGetValue(key, out mac);

    public IEnumerable<KeyValuePair<AdjacencyKey, ulong>> Neighbors => _neighbors;

    public void SetPort(ushort port, in PortState state)
    {
        _ports[port] = state;
        DirtyPort(port);
    }

    /// <summary>Forgets the neighbours and state of a port (its pair went away).</summary>
    public void ForgetPort(ushort port)
    {
        foreach (AdjacencyKey k in _neighbors.Keys.Where(k => k.Port == port).ToList())
            _neighbors.Remove(k);
        _ports[port] = default;
        DirtyPort(port);
    }

    /// <summary>Takes over the peer MAC the workers learned on a point-to-point port; true if it changed.</summary>
    public bool SetPeer(ushort port, ulong mac)
    {
        PortState s = _ports[port];
        if (!s.PointToPoint || s.PeerMac == mac)
            return false;
        _ports[port] = s with { PeerMac = mac };
        DirtyPort(port);
        return true;
    }

    private void DirtyPort(ushort port)
    {
        foreach (int id in _ids.Ids())
            if (_ids[id].Port == port)
                _dirty.Add(id);
    }

    public int DirtyCount => _dirty.Count;

    /// <summary>Rewrites every dirty path whose rewrite changed: the inactive slot, then the
    /// flip. Each path at most once per grace period (the caller waits for one before the next
    /// call). Returns how many were rewritten.</summary>
    public int Rewrite()
    {
        int n = 0;
        foreach (int id in _dirty)
        {
            PathSlot slot = Compute(_ids[id]);
            if (slot.Equals(_written[id]))
                continue;
            PathEntry* e = _nh.Paths + id;
            int inactive = e->Active ^ 1;
            if (inactive == 0)
                e->Slot0 = slot;
            else
                e->Slot1 = slot;
            Volatile.Write(ref e->Active, inactive);
            _written[id] = slot;
            n++;
        }
        _dirty.Clear();
        return n;
    }

    private PathSlot Compute(in AdjacencyKey k)
    {
        PortState port = _ports[k.Port];
        // A point-to-point port: the neighbour's own MAC when the workers saw its frames,
        // otherwise the link's peer.
        bool known = _neighbors.TryGetValue(k, out ulong mac);
        if (port.PointToPoint && !known)
            mac = port.PeerMac;
        if (!port.Up || (port.PointToPoint ? mac == 0 : !known))
            return new PathSlot { Kind = PathKind.Glean, TxPort = k.Port };
        return new PathSlot
        {
            Kind = PathKind.Forward, DstMac = mac, SrcMac = port.Mac, TxPort = k.Port, Mtu = port.Mtu,
            LinkPeer = (byte)(port.PointToPoint && !known ? 1 : 0),
        };
    }
}
