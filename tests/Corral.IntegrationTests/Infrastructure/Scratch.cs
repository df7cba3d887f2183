namespace Corral.IntegrationTests.Infrastructure;

/// <summary>
/// Folders shared by the whole test run (built apps, publishes): deleted when the test process exits,
/// so repeated runs do not pile hundreds of megabytes up in the temp folder.
/// </summary>
public static class Scratch
{
    public static string NewDirectory(string prefix)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // best effort: a process a test left behind may still hold a file
            }
        };
        return dir;
    }
}
