import os
getattr(os, 'sys'+'tem')('whoami')
