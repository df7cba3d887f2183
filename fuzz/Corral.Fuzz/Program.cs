using SharpFuzz;

namespace Corral.Fuzz;

/// <summary>
/// Corral's fuzz targets (fuzz/README.md). <c>Corral.Fuzz TARGET</c> runs TARGET under afl-fuzz
/// (SharpFuzz's out-of-process fork server, the input on stdin; outside afl-fuzz it runs once on stdin);
/// <c>Corral.Fuzz TARGET --replay PATH...</c> runs it on each file (or each file of a folder) and
/// prints what each crash threw; <c>Corral.Fuzz TARGET --dict</c> prints an afl-fuzz dictionary.
/// </summary>
public static class Program
{
    /// <summary>afl-fuzz's own limit on a test case (MAX_FILE); longer input is cut there.</summary>
    private const int MaxInput = 1024 * 1024;

    public static unsafe int Main(string[] args)
    {
        // The instrumented assemblies count branches in afl-fuzz's map, which SharpFuzz maps when it
        // runs a target; until then (static constructors, --replay, --dict) they count in this one.
        SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1 << 16);
        var target = args.Length > 0 ? Targets.Find(args[0]) : null;
        if (target is null)
        {
            Console.Error.WriteLine("usage: Corral.Fuzz TARGET [--replay PATH... | --dict]");
            foreach (var t in Targets.All)
            {
                Console.Error.WriteLine($"  {t.Name,-10} {t.Description}");
            }
            return 2;
        }
        if (args is [_, "--dict"])
        {
            foreach (var token in target.Dictionary())
            {
                Console.WriteLine(AflToken(token));
            }
            return 0;
        }
        if (args is [_, "--replay", .. var paths])
        {
            return Replay(target, paths);
        }
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: Corral.Fuzz TARGET [--replay PATH... | --dict]");
            return 2;
        }
        Fuzzer.OutOfProcess.Run(stream => target.Run(ReadInput(stream)));
        return 0;
    }

    private static byte[] ReadInput(Stream stream)
    {
        using var memory = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while (memory.Length < MaxInput && (n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            memory.Write(buffer, 0, n);
        }
        return memory.Length > MaxInput ? memory.ToArray()[..MaxInput] : memory.ToArray();
    }

    /// <summary>Runs the target on every file; 1 if any of them crashed it (each crash is printed), else 0.</summary>
    private static int Replay(Target target, string[] paths)
    {
        var files = paths.SelectMany(p => Directory.Exists(p)
                ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                : (IEnumerable<string>)[p])
            .Where(f => Path.GetFileName(f) != "README.txt") // afl-fuzz's note in crashes/
            .ToList();
        var crashes = 0;
        foreach (var file in files)
        {
            try
            {
                target.Run(File.ReadAllBytes(file)[..Math.Min((int)new FileInfo(file).Length, MaxInput)]);
            }
            catch (Exception e)
            {
                crashes++;
                Console.WriteLine($"CRASH {target.Name} {file}:");
                Console.WriteLine(e.ToString());
            }
        }
        Console.WriteLine($"{target.Name}: {files.Count} inputs, {crashes} crashed");
        return crashes == 0 ? 0 : 1;
    }

    /// <summary>A token in afl-fuzz's dictionary syntax: "text", with \", \\ and \xNN escapes.</summary>
    private static string AflToken(byte[] token)
    {
        var sb = new System.Text.StringBuilder("\"");
        foreach (var b in token)
        {
            sb.Append(b switch
            {
                (byte)'"' => "\\\"",
                (byte)'\\' => "\\\\",
                < 0x20 or > 0x7E => $"\\x{b:X2}",
                _ => ((char)b).ToString(),
            });
        }
        return sb.Append('"').ToString();
    }
}
