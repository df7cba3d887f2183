using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;

namespace Corral.IntegrationTests.Deployment;

/// <summary>
/// Test "hosts" made of Linux network namespaces: each has a veth pair, one end in the root namespace
/// (<see cref="SimHost.Gateway"/>) and one inside (<see cref="SimHost.Address"/>), on a /30 that
/// exists only on these veths. Nothing leaves this machine: the addresses are routed only between
/// the root namespace and the namespaces made here. Names are unique per run; Dispose removes the
/// namespaces and the veths (after the processes in them are stopped by their owners).
/// </summary>
public sealed class NetworkLab : IDisposable
{
    private readonly List<SimHost> _hosts = [];

    private NetworkLab(string id) => Id = id;

    public string Id { get; }
    public IReadOnlyList<SimHost> Hosts => _hosts;

    /// <summary>
    /// Makes <paramref name="count"/> hosts, or returns null with the reason when this machine cannot
    /// (no `ip`, no CAP_NET_ADMIN, no free 10.x /24 without a route already on it).
    /// </summary>
    public static (NetworkLab? Lab, string? Reason) TryCreate(int count)
    {
        if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip") && !File.Exists("/bin/ip"))
        {
            return (null, "`ip` (iproute2) is not installed: apt-get install -y iproute2");
        }
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        if (!TryPickSubnet(out var subnet))
        {
            return (null, "no 10.x.y.0/24 free of routes found for the test hosts");
        }
        var lab = new NetworkLab(id);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var ns = $"crl-{id}-{i}";
                var rootIf = $"crl{id}r{i}";  // at most 15 characters
                var gateway = IPAddress.Parse($"{subnet}.{4 * i + 1}");
                var address = IPAddress.Parse($"{subnet}.{4 * i + 2}");
                var (ok, error) = Ip("netns", "add", ns);
                if (!ok)
                {
                    lab.Dispose();
                    return (null, $"cannot create a network namespace (needs root or CAP_NET_ADMIN): ip netns add: {error}");
                }
                var host = new SimHost(ns, rootIf, gateway, address);
                lab._hosts.Add(host);
                Must("link", "add", rootIf, "type", "veth", "peer", "name", "eth0", "netns", ns);
                Must("addr", "add", $"{gateway}/30", "dev", rootIf);
                Must("link", "set", rootIf, "up");
                Must("-n", ns, "addr", "add", $"{address}/30", "dev", "eth0");
                Must("-n", ns, "link", "set", "eth0", "up");
                Must("-n", ns, "link", "set", "lo", "up");
            }
            return (lab, null);
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    /// <summary>Cuts a host off: its veth pair goes (the namespace keeps running, unreachable).</summary>
    public static void Unplug(SimHost host) => Ip("link", "del", host.RootInterface);

    public void Dispose()
    {
        foreach (var host in _hosts)
        {
            Ip("link", "del", host.RootInterface);
            Ip("netns", "del", host.Namespace);
        }
        _hosts.Clear();
    }

    /// <summary>A random 10.x.y (of a /24) that no route of the root namespace covers, other than the default.</summary>
    private static bool TryPickSubnet(out string subnet)
    {
        var routes = new List<(uint Network, int Bits)>();
        var (ok, output) = Ip("-4", "route", "show", "table", "all");
        foreach (var line in ok ? output.Split('\n', StringSplitOptions.RemoveEmptyEntries) : [])
        {
            var first = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
            if (first is "default" or "broadcast" or "local" or "unreachable" or "prohibit" or "blackhole")
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (first == "default" || parts.Length < 2)
                {
                    continue;
                }
                first = parts[1];
            }
            var slash = first.IndexOf('/');
            if (IPAddress.TryParse(slash < 0 ? first : first[..slash], out var net) && net.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                var bits = slash < 0 ? 32 : int.Parse(first[(slash + 1)..], CultureInfo.InvariantCulture);
                routes.Add((ToUInt(net), bits));
            }
        }
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var b = RandomNumberGenerator.GetInt32(64, 255);
            var c = RandomNumberGenerator.GetInt32(0, 255);
            var candidate = ToUInt(IPAddress.Parse($"10.{b}.{c}.0"));
            if (!routes.Any(r => Overlaps(candidate, 24, r.Network, r.Bits)))
            {
                subnet = $"10.{b}.{c}";
                return true;
            }
        }
        subnet = "";
        return false;
    }

    private static bool Overlaps(uint a, int aBits, uint b, int bBits)
    {
        var bits = Math.Min(aBits, bBits);
        var mask = bits == 0 ? 0u : uint.MaxValue << (32 - bits);
        return (a & mask) == (b & mask);
    }

    private static uint ToUInt(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        return (uint)(bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]);
    }

    private static void Must(params string[] args)
    {
        var (ok, error) = Ip(args);
        if (!ok)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', args)}: {error}");
        }
    }

    /// <summary>Runs `ip ARGS`; (true, stdout) or (false, stderr).</summary>
    public static (bool Ok, string Output) Ip(params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEnd();
            if (!p.WaitForExit(10_000))
            {
                p.Kill();
                return (false, "timed out");
            }
            return p.ExitCode == 0 ? (true, stdout.Result) : (false, stderr.Trim());
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (false, e.Message);
        }
    }
}

/// <summary>One test host: a network namespace, its address, and the root namespace's end of its veth.</summary>
public sealed record SimHost(string Namespace, string RootInterface, IPAddress Gateway, IPAddress Address);
