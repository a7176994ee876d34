from commcare.cli import main

main()
