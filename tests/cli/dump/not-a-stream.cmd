# Not a libmigstream stream at all: nothing on stdout, exit 2.
echo "hello, world" >text.txt
"$TOOLS/migstream-dump" text.txt
