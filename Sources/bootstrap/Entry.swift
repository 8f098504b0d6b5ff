import BootstrapCLI

@main
enum Entry {
    static func main() async {
        await BootstrapCommand.main()
    }
}
